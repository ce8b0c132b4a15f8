"""Where a harness library runs: in this process, or in a sanitizer worker process.

Both backends expose ``call(method, *args)`` dispatching to a ``Binding`` method, so
NativeCodec has one code path whichever is used.
"""

from __future__ import annotations

import ctypes
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

from .binding import Binding
from .worker import read_message, write_message

_REPO_ROOT = Path(__file__).resolve().parents[2]
# halt on the first report; Python itself leaks at exit, so LeakSanitizer stays off.
ASAN_OPTIONS = "detect_leaks=0:halt_on_error=1:allocator_may_return_null=1:detect_odr_violation=0"
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1"
_REPORT_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                   "AddressSanitizer:DEADLYSIGNAL", "Traceback")


class NativeCrash(RuntimeError):
    """The worker died (sanitizer report, signal) or timed out. ``report`` has its stderr."""

    def __init__(self, message: str, report: str):
        super().__init__(f"{message}\n{report}" if report else message)
        self.report = report


def asan_in_process() -> bool:
    """True if this process already runs with an ASan runtime (e.g. under LD_PRELOAD)."""
    try:
        ctypes.CDLL(None).__asan_init  # noqa: B018 - attribute lookup is the test
        return True
    except AttributeError:
        return False


class InProcess:
    def __init__(self, library: Path, factory: str):
        self._binding = Binding(library, factory)

    def call(self, method: str, *args):
        return getattr(self._binding, method)(*args)

    def close(self) -> None:
        self._binding.close()


STARTUP_TIMEOUT = 60.0  # seconds a worker may take to start and load its library


class Worker:
    """One long-lived worker process; restarted on the next call after a crash."""

    def __init__(self, library: Path, factory: str, preload: str | None, timeout: float):
        self._library, self._factory = str(library), factory
        self._preload, self._timeout = preload, timeout
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        if self._preload:
            env["LD_PRELOAD"] = self._preload
        env.setdefault("ASAN_OPTIONS", ASAN_OPTIONS)
        env.setdefault("UBSAN_OPTIONS", UBSAN_OPTIONS)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "codecgen.hostmodel.worker", self._library, self._factory],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        # The "ready" handshake, or the load error: starting Python and loading the library may take
        # longer than a call is allowed on a loaded machine.
        self._receive(self._stderr.tell(), timeout=max(self._timeout, STARTUP_TIMEOUT))

    def call(self, method: str, *args):
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        mark = self._stderr.seek(0, os.SEEK_END)
        try:
            write_message(self._proc.stdin.fileno(), (method, args))
        except BrokenPipeError:
            self._crashed(mark, f"worker died before {method}")
        return self._receive(mark, method)

    def _receive(self, mark: int, method: str = "startup", timeout: float | None = None):
        fd = self._proc.stdout.fileno()
        timeout = self._timeout if timeout is None else timeout
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            self._proc.kill()
            self._proc.wait()
            self._crashed(mark, f"{method} timed out after {timeout}s (endless loop?)")
        try:
            message = read_message(fd)
        except EOFError:
            message = None
        if message is None:
            self._proc.wait()
            self._crashed(mark, f"worker died during {method} (exit {self._proc.returncode})")
        status, value = message
        if status == "raise":
            raise value
        return value

    def _crashed(self, mark: int, message: str):
        self._stderr.seek(mark)
        text = self._stderr.read().decode(errors="replace")
        lines = text.splitlines()
        start = next((i for i, l in enumerate(lines) if any(m in l for m in _REPORT_MARKERS)), 0)
        self._proc = None
        raise NativeCrash(message, "\n".join(lines[start : start + 60]))

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

