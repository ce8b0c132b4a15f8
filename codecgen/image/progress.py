"""Follow a ``docker build`` stream: condensed live progress, a full log, a failure summary.

The engine's build stream (``APIClient.build(..., decode=True)``) is a sequence of
JSON objects.  With BuildKit, progress arrives as ``{"id": "moby.buildkit.trace",
"aux": <base64 protobuf>}`` where the protobuf is BuildKit's ``StatusResponse``
(moby/buildkit api/services/control/control.proto)::

    StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2;
                     repeated VertexLog logs = 3; }
    Vertex         { string digest = 1; repeated string inputs = 2; string name = 3;
                     bool cached = 4; Timestamp started = 5; Timestamp completed = 6;
                     string error = 7; }
    VertexLog      { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }

A vertex name such as ``[builder 3/9] RUN bazel build ...`` gives the stage and
the step.  The classic builder sends ``{"stream": "Step 3/9 : RUN ..."}`` lines
instead; both are handled.  Bazel's own progress lines (``[1,234 / 5,678] ...``)
inside a step's output give the action counts.
"""

from __future__ import annotations

import base64
import collections
import re
import time
from dataclasses import dataclass, field
from typing import IO, Any, Deque, Dict, Iterator, List, Optional, Tuple

__all__ = ["Vertex", "Failure", "BuildMonitor", "ProgressPrinter", "decode_status",
           "parse_vertex_name", "BAZEL_PROGRESS_RE"]

BAZEL_PROGRESS_RE = re.compile(r"\[(\d[\d,]*) / (\d[\d,]*)\]")
# BuildKit pads the step number: "[builder  2/11] RUN ...", "[ 3/12] COPY ...".
_VERTEX_NAME_RE = re.compile(
    r"^\[\s*(?:(?P<stage>[^\]\s]+)\s+)?(?P<step>\d+/\d+)\]\s+(?P<instr>.*)$", re.S)
_INTERNAL_RE = re.compile(r"^\[(?P<stage>[^\]\s]+)\] (?P<instr>.*)$", re.S)
_CLASSIC_STEP_RE = re.compile(r"^Step (?P<step>\d+/\d+) : (?P<instr>.*)$")
_FROM_AS_RE = re.compile(r"^FROM\s+(?:--\S+\s+)*(?P<image>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$", re.I)
LAST_LINES = 20


# --------------------------------------------------------------------------- protobuf


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, Any]]:
    """(field number, value) pairs of one protobuf message; LEN values stay bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def _timestamp(buf: bytes) -> float:
    seconds = nanos = 0
    for number, value in _fields(buf):
        if number == 1:
            seconds = value
        elif number == 2:
            nanos = value
    return seconds + nanos / 1e9


def decode_status(raw: bytes) -> Dict[str, List[Dict[str, Any]]]:
    """BuildKit ``StatusResponse`` bytes -> {"vertexes": [...], "logs": [...]} (dicts)."""
    out: Dict[str, List[Dict[str, Any]]] = {"vertexes": [], "logs": []}
    for number, value in _fields(raw):
        if number == 1:
            v: Dict[str, Any] = {"inputs": []}
            for n, val in _fields(value):
                if n == 1:
                    v["digest"] = val.decode()
                elif n == 2:
                    v["inputs"].append(val.decode())
                elif n == 3:
                    v["name"] = val.decode("utf-8", "replace")
                elif n == 4:
                    v["cached"] = bool(val)
                elif n == 5:
                    v["started"] = _timestamp(val)
                elif n == 6:
                    v["completed"] = _timestamp(val)
                elif n == 7:
                    v["error"] = val.decode("utf-8", "replace")
            out["vertexes"].append(v)
        elif number == 3:
            log: Dict[str, Any] = {}
            for n, val in _fields(value):
                if n == 1:
                    log["vertex"] = val.decode()
                elif n == 3:
                    log["stream"] = val
                elif n == 4:
                    log["msg"] = bytes(val)
            out["logs"].append(log)
    return out


# --------------------------------------------------------------------------- state


def parse_vertex_name(name: str) -> Tuple[Optional[str], Optional[str], str]:
    """``"[builder 3/9] RUN x"`` -> ("builder", "3/9", "RUN x"); ``"[2/3] RUN x"`` -> (None, "2/3", ...)."""
    m = _VERTEX_NAME_RE.match(name)
    if m:
        return m.group("stage"), m.group("step"), m.group("instr")
    m = _INTERNAL_RE.match(name)
    if m:
        return m.group("stage"), None, m.group("instr")
    return None, None, name


@dataclass
class Vertex:
    digest: str
    number: int
    name: str = ""
    stage: Optional[str] = None
    step: Optional[str] = None
    instruction: str = ""
    cached: bool = False
    started: Optional[float] = None
    completed: Optional[float] = None
    error: Optional[str] = None
    lines: Deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    partial: str = ""


@dataclass(frozen=True)
class Failure:
    """Where a build failed: stage, step, instruction, the engine's error, output tail."""

    stage: Optional[str]
    step: Optional[str]
    instruction: str
    error: str
    last_lines: Tuple[str, ...]

    def summary(self, log_path: Optional[str] = None) -> str:
        where = []
        if self.stage:
            where.append(f'stage "{self.stage}"')
        if self.step:
            where.append(f"step {self.step}")
        head = "build failed"
        if where:
            head += " at " + ", ".join(where)
        if self.instruction:
            head += f": {_shorten(self.instruction, 160)}"
        lines = [head, f"  error: {self.error}"]
        if self.last_lines:
            lines.append(f"  last {len(self.last_lines)} lines of its output:")
            lines.extend(f"    | {line}" for line in self.last_lines)
        if log_path:
            lines.append(f"  full log: {log_path}")
        return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


class BuildMonitor:
    """Consumes decoded build-stream items; tracks stage/step/bazel counts; writes the log."""

    def __init__(self, log: Optional[IO[str]] = None, clock=time.monotonic):
        self.log = log
        self.clock = clock
        self.started = clock()
        self.vertices: Dict[str, Vertex] = {}
        self.current: Optional[Vertex] = None
        self.bazel: Optional[Tuple[int, int]] = None
        self._bazel_vertex: Optional[Vertex] = None
        self.image_id: Optional[str] = None
        self.error: Optional[str] = None
        self.steps_seen: List[Tuple[Optional[str], Optional[str], str]] = []
        # classic builder state
        self._classic_stage: Optional[str] = None
        self._classic_stage_count = 0
        self._classic: Optional[Vertex] = None
        self.changed = True

    # -- public ------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def feed(self, item: Dict[str, Any]) -> None:
        if not isinstance(item, dict):
            return
        if item.get("id") == "moby.buildkit.trace" and "aux" in item:
            self._buildkit(decode_status(base64.b64decode(item["aux"])))
        elif item.get("id") == "moby.image.id" and isinstance(item.get("aux"), dict):
            self.image_id = item["aux"].get("ID")
        elif "aux" in item and isinstance(item["aux"], dict) and "ID" in item["aux"]:
            self.image_id = item["aux"]["ID"]
        if "stream" in item:
            self._classic_text(item["stream"])
        if "error" in item or "errorDetail" in item:
            detail = item.get("errorDetail") or {}
            self.error = (detail.get("message") or item.get("error") or "unknown error").strip()
            self._write(f"ERROR: {self.error}")
            self.changed = True
        elif "status" in item and item.get("status"):
            # pull progress etc. of the classic builder
            self._write(f"{item.get('id', '')} {item['status']}".strip())

    def failure(self) -> Optional[Failure]:
        """The failure, once the stream has ended with an error (None if it did not)."""
        if self.error is None:
            return None
        culprit = None
        failed = [v for v in self.vertices.values() if v.error]
        if failed:
            culprit = failed[-1]
        elif self._classic is not None:
            culprit = self._classic
        elif self.current is not None:
            culprit = self.current
        if culprit is None:
            return Failure(None, None, "", self.error, ())
        self._flush_partial(culprit)
        lines = tuple(list(culprit.lines)[-LAST_LINES:])
        return Failure(culprit.stage, culprit.step, culprit.instruction or culprit.name,
                       self.error, lines)

    def status_line(self, width: int = 120) -> str:
        """``[ 1m05s] builder 9/11 RUN --mount=... bazel build ... | bazel 1,234/5,678 actions (21%)``."""
        head = f"[{_fmt_elapsed(self.elapsed)}]"
        tail = ""
        v = self.current
        if self.bazel and (v is None or v is self._bazel_vertex):
            done, total = self.bazel
            pct = f" ({100 * done // total}%)" if total else ""
            tail = f" | bazel {done:,}/{total:,} actions{pct}"
        if v is not None:
            where = " ".join(p for p in (v.stage, v.step) if p)
            head += f" {where}" if where else ""
            room = max(width - len(head) - len(tail) - 1, 20)
            head += " " + _shorten(v.instruction, room)
        return head + tail

    # -- BuildKit ----------------------------------------------------------

    def _vertex(self, digest: str) -> Vertex:
        v = self.vertices.get(digest)
        if v is None:
            v = Vertex(digest=digest, number=len(self.vertices) + 1)
            self.vertices[digest] = v
        return v

    def _buildkit(self, status: Dict[str, List[Dict[str, Any]]]) -> None:
        for data in status["vertexes"]:
            v = self._vertex(data.get("digest", ""))
            if data.get("name") and not v.name:
                v.name = data["name"]
                v.stage, v.step, v.instruction = parse_vertex_name(v.name)
            if data.get("started") and v.started is None:
                v.started = data["started"]
                self._write(f"#{v.number} {v.name}")
                if v.step is not None:
                    self.current = v
                    self.steps_seen.append((v.stage, v.step, v.instruction))
                    self.changed = True
            if data.get("cached") and not v.cached:
                v.cached = True
                self._write(f"#{v.number} CACHED")
            if data.get("error") and not v.error:
                v.error = data["error"]
                self._flush_partial(v)
                self._write(f"#{v.number} ERROR: {v.error}")
                self.changed = True
            if data.get("completed") and v.completed is None:
                v.completed = data["completed"]
                self._flush_partial(v)
                if not v.error:
                    took = (v.completed - v.started) if v.started else 0.0
                    self._write(f"#{v.number} DONE {took:.1f}s")
        for log in status["logs"]:
            v = self._vertex(log.get("vertex", ""))
            self._output(v, log.get("msg", b"").decode("utf-8", "replace"))

    def _output(self, v: Vertex, text: str) -> None:
        text = v.partial + text.replace("\r\n", "\n").replace("\r", "\n")
        *complete, v.partial = text.split("\n")
        for line in complete:
            self._line(v, line)

    def _flush_partial(self, v: Vertex) -> None:
        if v.partial:
            line, v.partial = v.partial, ""
            self._line(v, line)

    def _line(self, v: Vertex, line: str) -> None:
        v.lines.append(line)
        self._write(f"#{v.number} {line}")
        matches = BAZEL_PROGRESS_RE.findall(line)
        if matches:
            done, total = matches[-1]
            self.bazel = (int(done.replace(",", "")), int(total.replace(",", "")))
            self._bazel_vertex = v
            self.changed = True

    # -- classic builder ---------------------------------------------------

    def _classic_text(self, text: str) -> None:
        for raw in text.splitlines():
            line = raw.rstrip()
            m = _CLASSIC_STEP_RE.match(line)
            if m:
                instr = m.group("instr")
                f = _FROM_AS_RE.match(instr)
                if f:
                    self._classic_stage = f.group("name") or f"stage-{self._classic_stage_count}"
                    self._classic_stage_count += 1
                v = self._vertex(f"classic-{len(self.vertices) + 1}")
                v.name = line
                v.stage, v.step, v.instruction = self._classic_stage, m.group("step"), instr
                v.started = self.clock()
                self._classic = self.current = v
                self.steps_seen.append((v.stage, v.step, v.instruction))
                self.changed = True
                self._write(f"#{v.number} [{v.stage} {v.step}] {instr}")
            elif self._classic is not None:
                if line.startswith(" ---> ") or line.startswith("Removing intermediate"):
                    self._write(line)
                else:
                    self._line(self._classic, line)
            elif line:
                self._write(line)

    def _write(self, text: str) -> None:
        if self.log is not None:
            self.log.write(f"{_fmt_elapsed(self.elapsed)} {text}\n")


def _fmt_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m:2d}m{s:02d}s"


class ProgressPrinter:
    """Condensed progress: one rewritten line on a terminal, sparse lines otherwise."""

    def __init__(self, stream: Optional[IO[str]], tty: Optional[bool] = None,
                 interval: Optional[float] = None, clock=time.monotonic):
        self.stream = stream
        self.tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        self.interval = interval if interval is not None else (0.2 if self.tty else 30.0)
        self.clock = clock
        self._last_time = float("-inf")
        self._last_step: Optional[Tuple[Optional[str], Optional[str]]] = None
        self._last_line = ""

    def update(self, monitor: BuildMonitor, force: bool = False) -> None:
        if self.stream is None or not (monitor.changed or force):
            return
        if monitor.current is None and monitor.bazel is None:
            return
        cur = monitor.current
        step = (cur.stage, cur.step) if cur is not None else None
        now = self.clock()
        if not force and step == self._last_step and now - self._last_time < self.interval:
            return
        line = monitor.status_line()
        if line == self._last_line and not force:
            return
        monitor.changed = False
        self._last_time, self._last_step, self._last_line = now, step, line
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self, text: str) -> None:
        if self.stream is None:
            return
        if self.tty and self._last_line:
            self.stream.write("\r\x1b[K")
        self.stream.write(text.rstrip("\n") + "\n")
        self.stream.flush()
