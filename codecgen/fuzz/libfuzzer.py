"""Run libFuzzer workers on the fuzz target and follow their progress and crashes.

Each of ``jobs`` workers is a separate libFuzzer process sharing one corpus folder (libFuzzer
writes new inputs there and, with ``-reload``, picks up the others'); this keeps libFuzzer's
ordinary one-line status (``#N ... cov: C ft: F corp: K/S exec/s: E``) per worker, which
``Worker`` parses. A worker that crashes leaves its input in the artifacts folder and ends;
``Campaign`` collects it, and the caller decides whether to stop or restart it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+).*?exec/s: (\d+)")
ARTIFACT = re.compile(r"Test unit written to (\S+)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")
_REPORT_LINES = ("CONTRACT VIOLATION", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                 "runtime error:", "ERROR: libFuzzer", "SUMMARY:", "ALARM: working on the last Unit",
                 "out-of-memory")


@dataclass
class Crash:
    artifact: Path
    summary: str
    log: str


@dataclass
class Worker:
    index: int
    process: subprocess.Popen
    started: float
    log: list = field(default_factory=list)
    execs: int = 0
    exec_per_s: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    stats: dict = field(default_factory=dict)
    artifact: Optional[Path] = None
    done: bool = False
    execs_before: int = 0  # executions of earlier processes of this worker slot

    def feed(self, line: str) -> None:
        self.log.append(line)
        if len(self.log) > 400:
            del self.log[:200]
        m = _STATUS.match(line)
        if m:
            self.execs = int(m.group(1))
            self.cov = max(self.cov, int(m.group(3)))
            self.ft = max(self.ft, int(m.group(4)))
            self.corpus = int(m.group(5))
            self.exec_per_s = int(m.group(7))
            return
        m = ARTIFACT.search(line)
        if m:
            self.artifact = Path(m.group(1))
            return
        m = _STAT.match(line)
        if m:
            self.stats[m.group(1)] = int(m.group(2))

    def summary(self) -> str:
        for marker in _REPORT_LINES:
            for line in self.log:
                if marker in line:
                    return line.strip().lstrip("=0123456789").strip()
        return "libFuzzer stopped on an input"


class Campaign:
    """``jobs`` libFuzzer processes over one corpus, until ``seconds`` have passed."""

    def __init__(self, binary: Path, corpus: Path, seeds: Path, dictionary: Path,
                 artifacts: Path, seconds: float, jobs: int, max_len: int,
                 extra_args: tuple[str, ...] = (), ignore: tuple[str, ...] = ()):
        self.binary = Path(binary)
        self.corpus = Path(corpus)
        self.seeds = Path(seeds)
        self.dictionary = Path(dictionary)
        self.artifacts = Path(artifacts)
        self.deadline = time.monotonic() + seconds
        self.jobs = jobs
        self.max_len = max_len
        self.extra_args = extra_args
        self.ignore = ignore
        self.workers: list[Worker] = []
        self.crashes: list[Crash] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def command(self, seconds: int) -> list[str]:
        return [str(self.binary), f"-max_total_time={max(1, seconds)}", "-print_final_stats=1",
                f"-artifact_prefix={self.artifacts}/", f"-dict={self.dictionary}",
                f"-max_len={self.max_len}", "-timeout=10", "-rss_limit_mb=2048",
                "-malloc_limit_mb=512", "-reload=1", "-report_slow_units=30",
                *self.extra_args, str(self.corpus), str(self.seeds)]

    def start(self) -> None:
        self.corpus.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        for index in range(self.jobs):
            self._spawn(index)

    def _spawn(self, index: int, previous: Optional[Worker] = None) -> None:
        seconds = int(self.deadline - time.monotonic())
        if seconds < 1:
            return
        env = dict(os.environ)
        if self.ignore:
            env["CODECGEN_FUZZ_IGNORE"] = "|".join(self.ignore)
        process = subprocess.Popen(self.command(seconds), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, errors="replace", env=env,
                                   start_new_session=True)
        worker = Worker(index, process, time.monotonic())
        if previous is not None:
            worker.execs_before = previous.execs_before + previous.execs
            worker.cov, worker.ft = previous.cov, previous.ft
        with self._lock:
            if previous is not None:
                self.workers[self.workers.index(previous)] = worker
            else:
                self.workers.append(worker)
        thread = threading.Thread(target=self._read, args=(worker,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read(self, worker: Worker) -> None:
        assert worker.process.stderr is not None
        for line in worker.process.stderr:
            with self._lock:
                worker.feed(line.rstrip("\n"))
        worker.process.wait()
        with self._lock:
            worker.done = True
            if worker.artifact is not None and not self._stopping:
                self.crashes.append(Crash(worker.artifact, worker.summary(), "\n".join(worker.log)))

    # ------------------------------------------------------------------ control

    def restart_finished(self) -> None:
        """Start a new process in every slot whose process ended early (after a crash). An
        input that crashed is taken out of the seeds and the corpus first: libFuzzer runs them
        all at start-up, so a crashing seed would stop every new process at once."""
        with self._lock:
            ended = [w for w in self.workers if w.done and w.artifact is not None]
        for worker in ended:
            self._quarantine(worker.artifact)
            if not self._stopping and time.monotonic() < self.deadline - 1:
                self._spawn(worker.index, worker)

    def _quarantine(self, artifact: Path) -> None:
        try:
            data = artifact.read_bytes()
        except OSError:
            return
        for folder in (self.seeds, self.corpus):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_file() and entry.stat().st_size == len(data) and \
                            Path(entry.path).read_bytes() == data:
                        os.unlink(entry.path)
                except OSError:
                    pass

    def running(self) -> bool:
        with self._lock:
            return any(not w.done for w in self.workers)

    def stop(self) -> None:
        """Ask every worker to finish (SIGINT: libFuzzer prints its final stats) and wait."""
        self._stopping = True
        for worker in list(self.workers):
            if worker.process.poll() is None:
                try:
                    os.killpg(worker.process.pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass
        for worker in list(self.workers):
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(worker.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                worker.process.wait()
        for thread in self._threads:
            thread.join(timeout=5)

    # ------------------------------------------------------------------ figures

    def totals(self) -> dict:
        with self._lock:
            workers = list(self.workers)
        running = [w for w in workers if not w.done]
        try:
            corpus = sum(1 for _ in os.scandir(self.corpus))
        except OSError:
            corpus = max((w.corpus for w in workers), default=0)
        execs = sum(w.execs_before + max(w.execs, w.stats.get("number_of_executed_units", 0))
                    for w in workers)
        return {
            "execs": execs,
            "exec_per_s": sum(w.exec_per_s for w in running) if running else
            sum(w.stats.get("average_exec_per_sec", w.exec_per_s) for w in workers),
            "cov": max((w.cov for w in workers), default=0),
            "ft": max((w.ft for w in workers), default=0),
            "corpus": corpus,
            "workers": len(running),
        }


def minimize_crash(binary: Path, crash: Path, out: Path, seconds: int = 10) -> Optional[Path]:
    """libFuzzer's -minimize_crash=1 on ``crash``; returns ``out`` if it produced a smaller
    input that still crashes."""
    command = [str(binary), "-minimize_crash=1", f"-max_total_time={seconds}", "-runs=20000",
               f"-exact_artifact_path={out}", str(crash)]
    try:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return None
    if not out.is_file() or out.stat().st_size >= crash.stat().st_size:
        return None
    return out if replay(binary, out)[0] != 0 else None


def replay(binary: Path, data_file: Path, timeout: float = 60) -> tuple[int, str]:
    """Run the target once on one input: (exit code, stderr)."""
    try:
        result = subprocess.run([str(binary), str(data_file)], capture_output=True, text=True,
                                errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, f"{binary} {data_file}: no result after {timeout:.0f} s"
    return result.returncode, result.stderr
