"""A private Docker engine for tests, started and stopped by the test session.

Fixtures (import them into a test module, or list this module in ``pytest_plugins``):

``dockerd``        session-scoped; starts ``dockerd`` as root with its own data root,
                   exec root, pidfile and unix socket (no iptables, no bridge: run
                   containers and RUN steps with ``network_mode="host"``), waits until it
                   answers, yields its base URL (``unix:///tmp/cgd-.../docker.sock``) and
                   stops it by PID at the end.  overlay2 storage, vfs if that fails.
``busybox_image``  session-scoped; a local base image ``codecgen-test/busybox:1`` made
                   from the host's static busybox with ``docker import`` (nothing pulled).

Nothing is installed here.  If ``dockerd`` or a static busybox is missing, the
tests that use these fixtures FAIL (they do not skip) and say what to install:
the CI script installs ``docker.io`` and ``busybox-static``.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

INSTALL_HINT = ("run the install script (.ci/run installs them: "
                "apt-get install -y docker.io busybox-static)")
BUSYBOX_IMAGE = "codecgen-test/busybox:1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def _ping(sock_path: str, timeout: float = 1.0) -> bool:
    """True when the engine at the unix socket answers GET /_ping with OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] + b" "
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pid(pid: int, timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL: only this one process id."""
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:
            if not _pid_alive(pid):
                return
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _unmount_below(root: Path) -> None:
    """Lazy-unmount anything a dying dockerd left mounted under root (deepest first)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if len(line.split()) > 1]
    prefix = str(root) + "/"
    for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


class Engine:
    """One running dockerd."""

    def __init__(self, root: Path, driver: str):
        self.root = root
        self.driver = driver
        self.sock = root / "docker.sock"
        self.pidfile = root / "dockerd.pid"
        self.log = root / "dockerd.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self, exe: str) -> None:
        (self.root / "daemon.json").write_text("{}\n")
        cmd = [exe,
               "--config-file", str(self.root / "daemon.json"),
               "--data-root", str(self.root / "data"),
               "--exec-root", str(self.root / "x"),
               "--pidfile", str(self.pidfile),
               "-H", self.url,
               "--iptables=false",
               "--bridge=none",
               "--storage-driver", self.driver]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self, timeout: float) -> Optional[str]:
        """None once the engine answers; else why not (the log tail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping(str(self.sock)):
                return None
            if self.proc is not None and self.proc.poll() is not None:
                return f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}"
            time.sleep(0.2)
        return f"dockerd did not answer within {timeout:g}s:\n{self.log_tail()}"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        containerd_pid = None
        pid_file = self.root / "x" / "containerd" / "containerd.pid"
        if pid_file.is_file():
            try:
                containerd_pid = int(pid_file.read_text().strip())
            except ValueError:
                containerd_pid = None
        if self.proc is not None:
            _stop_pid(self.proc.pid, STOP_TIMEOUT)
        # dockerd stops the containerd it started; make sure of it, by that PID only.
        if containerd_pid and _pid_alive(containerd_pid):
            _stop_pid(containerd_pid, 5.0)
        _unmount_below(self.root)


def start_engine() -> Engine:
    exe = shutil.which("dockerd")
    if exe is None:
        pytest.fail(f"dockerd is not installed: {INSTALL_HINT}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the docker tests start their own dockerd and must run as root",
                    pytrace=False)
    errors = []
    for driver in ("overlay2", "vfs"):
        # Short path: containerd's sockets live under the exec root (108-byte limit).
        root = Path(tempfile.mkdtemp(prefix="cgd-", dir="/tmp"))
        engine = Engine(root, driver)
        engine.start(exe)
        why = engine.wait(START_TIMEOUT)
        if why is None:
            return engine
        errors.append(f"[{driver}] {why}")
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
    pytest.fail("could not start dockerd:\n" + "\n".join(errors), pytrace=False)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[str]:
    engine = start_engine()
    try:
        yield engine.url
    finally:
        engine.stop()
        shutil.rmtree(engine.root, ignore_errors=True)


def _is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a PT_INTERP program header."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack(endian + "Q", head[32:40])
        phentsize, phnum = struct.unpack(endian + "HH", head[54:58])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(endian + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


def busybox_rootfs_tar() -> bytes:
    """A tar of a minimal root filesystem around the host's static busybox."""
    candidates = [Path("/bin/busybox"), Path("/usr/bin/busybox")]
    path = next((p for p in candidates if p.is_file() and _is_static_elf(p)), None)
    if path is None:
        pytest.fail(f"no static busybox at /bin/busybox: {INSTALL_HINT}", pytrace=False)
    applets = subprocess.run([str(path), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    data = path.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tf.addfile(info)

        def add_file(name: str, content: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tf.addfile(info, io.BytesIO(content))

        for d in ("bin", "etc", "root", "usr", "usr/local", "usr/local/bin"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", data, 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


@pytest.fixture(scope="session")
def busybox_image(dockerd: str) -> str:
    import docker  # the SDK is a test dependency of the docker tests only

    client = docker.APIClient(base_url=dockerd, version="auto")
    try:
        repo, tag = BUSYBOX_IMAGE.rsplit(":", 1)
        client.import_image_from_data(busybox_rootfs_tar(), repository=repo, tag=tag)
        client.inspect_image(BUSYBOX_IMAGE)
    finally:
        client.close()
    return BUSYBOX_IMAGE
