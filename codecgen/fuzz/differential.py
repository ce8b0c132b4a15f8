"""Structure-aware differential fuzzing: frames generated and mutated from the IR, run on the
Python reference codec and on the C++ codec; any disagreement is a finding.

Cases have the shape of ``codecgen verify`` cases (``codecgen.verify.run``), so the comparison,
the minimisation and the reproducer format are verify's own and a reproducer replays with
``codecgen verify --replay`` as well as ``codecgen fuzz --replay``. Strategies (see
``Generator``): valid frames in random reads, fields at their edges, lengths off by one or two,
counts beyond the bytes, lengths beyond max_frame_size with the frame cut right after them,
truncation at every position, bit flips in the header, wrong constant bytes, inserted and
deleted bytes, spliced frames, extreme values, overlong varints, random bytes, and encode /
onError / heartbeat on frames that decode. Inputs libFuzzer finds interesting (its corpus)
are replayed here too, so coverage-guided exploration gets the reference as its oracle.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from codecgen import ir
from codecgen.fuzz import spans as sp
from codecgen.fuzz.inputs import parse_input
from codecgen.hostmodel.native import NativeCrash
from codecgen.verify.fixtures import ERROR_MESSAGES, FIXED_MUTATIONS, FRAMEWORK_KEYS
from codecgen.verify.run import agree, cpp_outcome, difference, minimize, python_outcome

STRATEGIES = {  # name: weight
    "valid": 5, "edge": 10, "length": 10, "count": 4, "oversize": 4, "truncate": 7,
    "bitflip": 6, "const": 4, "insdel": 4, "splice": 3, "extreme": 3, "varint": 2,
    "garbage": 2, "extra": 9, "corpus": 8,
}


@dataclass
class DiffFinding:
    case: dict
    difference: str
    report: str = ""  # a sanitizer report when the C++ side crashed


@dataclass
class DiffStats:
    cases: int = 0
    by_kind: dict = field(default_factory=dict)
    corpus_replayed: int = 0
    findings: list = field(default_factory=list)


class Generator:
    """Cases built from the IR (one strategy per batch)."""

    def __init__(self, proto: ir.ProtocolIR, module, rng: random.Random,
                 corpus_dir: Optional[Path] = None):
        self.proto = proto
        self.module = module
        self.rng = rng
        self.corpus_dir = Path(corpus_dir) if corpus_dir else None
        self.seen_corpus: set[str] = set()
        self.pool: dict[str, list[bytes]] = {"request": [], "response": []}
        self.limit = proto.max_frame_size
        self.build_time = 0.0
        names = [n for n in STRATEGIES if n != "corpus" or self.corpus_dir is not None]
        self.names = names
        self.weights = [STRATEGIES[n] for n in names]

    # ------------------------------------------------------------------ frames

    def frame(self, direction: str) -> Optional[bytes]:
        from codecgen.verify.values import random_frame

        pool = self.pool[direction]
        # New frames cost a construct build (milliseconds for specs with extensions): refresh
        # the pool less often when they are slow.
        refresh = 0.2 * min(1.0, 0.001 / max(self.build_time, 1e-6))
        if len(pool) < 16 or self.rng.random() < refresh:
            started = time.perf_counter()
            try:
                frame = random_frame(self.proto, self.module, self.rng, direction=direction)
            except RuntimeError:
                return self.rng.choice(pool) if pool else None
            finally:
                self.build_time = 0.8 * self.build_time + 0.2 * (time.perf_counter() - started)
            if len(pool) < 64:
                pool.append(frame)
            else:
                pool[self.rng.randrange(len(pool))] = frame
            return frame
        return self.rng.choice(pool)

    def direction(self) -> str:
        return "response" if self.rng.random() < 0.35 else "request"

    def chunks(self, data: bytes) -> list[int]:
        pick = self.rng.random()
        if pick < 0.5 or len(data) < 2:
            return []
        if pick < 0.75:
            return [self.rng.randrange(1, len(data))]
        if pick < 0.85 and len(data) <= 200:
            return [1] * len(data)
        out, left = [], len(data)
        while left > 0 and len(out) < 16:
            n = self.rng.randint(1, max(1, min(left, 24)))
            out.append(n)
            left -= n
        return out

    def case(self, kind: str, direction: str, data: bytes, tail: bool = True) -> dict:
        if tail and self.rng.random() < 0.25:
            more = self.frame(direction)
            if more is not None:
                data = data + more
        return {"kind": kind, "direction": direction, "data": bytes(data), "chunks": self.chunks(data)}

    # ------------------------------------------------------------------ strategies

    def batch(self) -> list[dict]:
        name = self.rng.choices(self.names, self.weights)[0]
        direction = self.direction()
        if name == "corpus":
            return self.corpus()
        frame = self.frame(direction)
        if frame is None:
            direction = "request"
            frame = self.frame(direction)
            if frame is None:
                return [self.case("garbage", direction, self.noise(), tail=False)]
        spans = sp.trace(self.proto, frame, direction)
        return getattr(self, "s_" + name)(direction, frame, spans) or \
            [self.case("valid", direction, frame)]

    def noise(self) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))

    def s_valid(self, direction, frame, spans):
        data = frame
        for _ in range(self.rng.randint(0, 2)):
            data += self.frame(direction) or b""
        return [self.case("valid", direction, data, tail=False)]

    def _set(self, frame: bytes, span: sp.Span, raw: bytes) -> bytes:
        return frame[:span.start] + raw + frame[span.end:]

    def _int_values(self, span: sp.Span) -> list[int]:
        t = span.itype
        v = span.value or 0
        return [t.min_value, t.max_value, 0, 1, t.max_value - 1, t.min_value + 1, v + 1, v - 1,
                v ^ (1 << self.rng.randrange(t.width * 8))]

    def s_edge(self, direction, frame, spans):
        ints = [s for s in spans if s.itype is not None]
        bits = [s for s in spans if s.kind == sp.BITS]
        out = []
        for _ in range(3):
            if ints and (not bits or self.rng.random() < 0.75):
                s = self.rng.choice(ints)
                raw = sp.encode_int(self.rng.choice(self._int_values(s)), s.itype)
            elif bits:
                s = self.rng.choice(bits)
                width = s.end - s.start
                raw = self.rng.choice([b"\x00" * width, b"\xff" * width,
                                       (s.value ^ (1 << self.rng.randrange(width * 8))).to_bytes(width, "big")])
            else:
                return None
            out.append(self.case("edge", direction, self._set(frame, s, raw)))
        return out

    def s_length(self, direction, frame, spans):
        sizing = [s for s in spans if s.sizing and (s.itype is not None or s.kind == sp.VARINT)]
        if not sizing:
            return None
        s = self.rng.choice(sizing)
        v = s.value or 0
        room = (s.limit or self.limit) - s.end
        candidates = [v + 1, v - 1, v + 2, v - 2, 2 * v + 1, room, room + 1, room - 1,
                      self.limit, self.limit + 1, -1, (1 << 31) - 1, (1 << 32) - 1, (1 << 63) - 1,
                      v + self.limit]
        out = []
        for value in self.rng.sample(candidates, 4):
            if s.itype is not None:
                raw = sp.encode_int(value, s.itype)
            else:
                raw = sp.encode_varint(max(0, value))
            data = self._set(frame, s, raw)
            if self.rng.random() < 0.3:  # the length alone: refused as soon as readable?
                data = data[:s.start + len(raw)]
            out.append(self.case("length", direction, data, tail=False))
        return out

    def s_count(self, direction, frame, spans):
        counts = [s for s in spans if s.kind == sp.COUNT]
        if not counts:
            return self.s_length(direction, frame, spans)
        s = self.rng.choice(counts)
        array: ir.Array = s.node
        room = (s.limit or self.limit) - s.end
        values = [array.max_count, array.max_count + 1, room + 1, room, (s.value or 0) + 1,
                  s.itype.max_value, (1 << 31) + 5]
        out = []
        for value in values:
            data = self._set(frame, s, sp.encode_int(value, s.itype))
            if self.rng.random() < 0.5:
                data = data[:s.end]
            out.append(self.case("count", direction, data, tail=False))
        return out

    def s_oversize(self, direction, frame, spans):
        sizing = [s for s in spans if s.sizing and s.itype is not None]
        out = []
        for s in sizing:
            for value in (self.limit + 1, self.limit * 2, s.itype.max_value, -1):
                raw = sp.encode_int(value, s.itype)
                out.append(self.case("oversize", direction, self._set(frame, s, raw)[:s.end],
                                     tail=False))
        return out or None

    def s_truncate(self, direction, frame, spans):
        if len(frame) <= 48:
            cuts = range(len(frame))
        else:
            cuts = sorted(self.rng.sample(range(len(frame)), 24))
        return [{"kind": "truncate", "direction": direction, "data": frame[:k],
                 "chunks": self.chunks(frame[:k]) if k else []} for k in cuts]

    def s_bitflip(self, direction, frame, spans):
        out = []
        head = max(1, min(len(frame), 32))
        for _ in range(4):
            data = bytearray(frame)
            for _ in range(self.rng.randint(1, 3)):
                at = self.rng.randrange(head)
                data[at] ^= 1 << self.rng.randrange(8)
            out.append(self.case("bitflip", direction, bytes(data)))
        return out

    def s_const(self, direction, frame, spans):
        consts = [s for s in spans if s.kind == sp.CONST]
        if not consts:
            return None
        out = []
        for s in consts:
            for at in range(s.start, s.end):
                data = bytearray(frame)
                data[at] ^= self.rng.randrange(1, 256)
                out.append({"kind": "const", "direction": direction, "data": bytes(data[:at + 1]),
                            "chunks": []})
                out.append(self.case("const", direction, bytes(data)))
        return out

    def s_insdel(self, direction, frame, spans):
        bounds = sorted({0, len(frame), *(s.start for s in spans), *(s.end for s in spans)})
        out = []
        for _ in range(3):
            at = self.rng.choice(bounds)
            if self.rng.random() < 0.5 or at >= len(frame):
                data = frame[:at] + bytes([self.rng.randrange(256)]) * self.rng.randint(1, 3) + frame[at:]
            else:
                data = frame[:at] + frame[at + self.rng.randint(1, 3):]
            out.append(self.case("insdel", direction, data))
        return out

    def s_splice(self, direction, frame, spans):
        other = self.frame(direction) or frame
        a = self.rng.randrange(len(frame) + 1)
        b = self.rng.randrange(len(other) + 1)
        return [self.case("splice", direction, frame[:a] + other[b:])]

    def s_extreme(self, direction, frame, spans):
        ints = [s for s in spans if s.itype is not None]
        if not ints:
            return None
        out = []
        for pick in ("max", "min", "zero", "high"):
            data = bytearray(frame)
            for s in ints:
                t = s.itype
                value = {"max": t.max_value, "min": t.min_value, "zero": 0,
                         "high": 1 << (t.width * 8 - 1)}[pick]
                data[s.start:s.end] = sp.encode_int(value, t)
            out.append(self.case("extreme", direction, bytes(data)))
        return out

    def s_varint(self, direction, frame, spans):
        varints = [s for s in spans if s.kind == sp.VARINT or (s.kind == sp.LENGTH and s.itype is None)]
        if not varints:
            return None
        s = self.rng.choice(varints)
        out = []
        for raw in (b"\x80" * 9 + b"\x02", b"\x80" * 10 + b"\x00", b"\xff" * 9 + b"\x01",
                    b"\x80\x00", sp.encode_varint(self.limit + 1), b"\xff\xff\xff\xff\x0f"):
            out.append(self.case("varint", direction, self._set(frame, s, raw)))
        return out

    def s_garbage(self, direction, frame, spans):
        return [self.case("garbage", direction, self.noise(), tail=False)]

    # ------------------------------------------------------------------ encode, onError, heartbeat

    def decodes_alone(self, data: bytes, direction: str):
        """The reference metadata if ``data`` is exactly one frame, else None."""
        frames, held, error = self.module.decode_all(data, direction)
        return frames[0] if len(frames) == 1 and not held and error is None else None

    def extra_cases(self, direction: str, data: bytes, md) -> list[dict]:
        keys = [k.decode("latin-1") for k in md.strings] if md is not None else []
        mutations = [dict(self.rng.choice(FIXED_MUTATIONS)),
                     {self.rng.choice(FRAMEWORK_KEYS): "v", "x-new": "1"}]
        if keys:
            key = self.rng.choice(keys)
            mutations.append({key.upper(): "changed", "x-new": "1"})
            mutations.append({key: ""})
        out = []
        for mutation in self.rng.sample(mutations, 2):
            for path in ("request", "response"):
                out.append({"kind": "mutation", "direction": direction, "data": data,
                            "mutation": mutation, "path": path})
        error_type = self.rng.randrange(6)
        message = self.rng.choice(ERROR_MESSAGES)
        out.append({"kind": "error", "direction": direction, "data": data,
                    "error_type": error_type, "message": message})
        if self.rng.random() < 0.3:
            out.append({"kind": "error", "direction": direction, "data": None,
                        "error_type": error_type, "message": message})
        if self.proto.roles.heartbeat_reply is not None:
            out.append({"kind": "heartbeat", "direction": direction, "data": data})
        return out

    def s_extra(self, direction, frame, spans):
        data = frame
        if self.rng.random() < 0.4:  # a near-valid frame that still decodes
            ints = [s for s in spans if s.itype is not None and not s.sizing]
            if ints:
                s = self.rng.choice(ints)
                data = self._set(frame, s, sp.encode_int(self.rng.choice(self._int_values(s)), s.itype))
        md = self.decodes_alone(data, direction)
        if md is None:
            data, md = frame, self.decodes_alone(frame, direction)
            if md is None:
                return None
        return self.extra_cases(direction, data, md)

    # ------------------------------------------------------------------ libFuzzer's corpus

    def corpus(self) -> list[dict]:
        if self.corpus_dir is None or not self.corpus_dir.is_dir():
            return self.s_garbage("request", b"", [])
        try:
            names = [n for n in os.listdir(self.corpus_dir) if n not in self.seen_corpus]
        except OSError:
            names = []
        if not names:
            return [self.case("garbage", "request", self.noise(), tail=False)]
        name = self.rng.choice(names)
        self.seen_corpus.add(name)
        try:
            raw = (self.corpus_dir / name).read_bytes()
        except OSError:
            return []
        return self.from_input(raw, "corpus")

    def from_input(self, raw: bytes, kind: str = "corpus") -> list[dict]:
        """A libFuzzer input as differential cases: its stream in its reads, plus its extra call
        on the frame it names when that frame decodes alone."""
        plan, stream = parse_input(raw)
        if plan is None:
            return []
        out = [{"kind": kind, "direction": plan.direction, "data": stream,
                "chunks": list(plan.chunks)}]
        if plan.extra == "none":
            return out
        frames, _, _ = self.module.decode_all(stream, plan.direction)
        if plan.extra == "error" and plan.empty_metadata:
            out.append({"kind": "error", "direction": plan.direction, "data": None,
                        "error_type": plan.error_type, "message": plan.message})
            return out
        if not frames:
            return out
        md = frames[-1] if plan.last_frame else frames[0]
        data = bytes(md.frame)
        if plan.extra == "encode":
            first = next(iter(md.strings), None)
            out.append({"kind": "mutation", "direction": plan.direction, "data": data,
                        "mutation": plan.mutation(first.decode("latin-1") if first else None),
                        "path": plan.encode_path})
        elif plan.extra == "error":
            out.append({"kind": "error", "direction": plan.direction, "data": data,
                        "error_type": plan.error_type, "message": plan.message})
        elif plan.extra == "heartbeat" and self.proto.roles.heartbeat_reply is not None:
            out.append({"kind": "heartbeat", "direction": plan.direction, "data": data})
        return out


# --------------------------------------------------------------------------- comparison


def reference_outcome(module, case):
    """python_outcome, with a crash of the reference itself turned into an outcome."""
    try:
        return python_outcome(module, case)
    except Exception as exc:  # noqa: BLE001 - a bug in the reference is a finding too
        return ("reference crashed", f"{type(exc).__name__}: {exc}")


def native_outcome(native, case):
    try:
        return cpp_outcome(native, case)
    except NativeCrash as exc:
        return ("crash", exc.report or str(exc))


def compare(module, native, case) -> Optional[DiffFinding]:
    expected = reference_outcome(module, case)
    actual = native_outcome(native, case)
    if _same(expected, actual):
        return None

    def fails(c):
        return not _same(reference_outcome(module, c), native_outcome(native, c))

    small = shrink(module, minimize(case, fails, budget=200), fails)
    expected = reference_outcome(module, small)
    actual = native_outcome(native, small)
    report = actual[1] if isinstance(actual, tuple) and actual[0] == "crash" else ""
    return DiffFinding(small, _difference(expected, actual), report)


def shrink(module, case: dict, fails, budget: int = 150) -> dict:
    """Beyond verify's minimize (one read, then bytes off the end): drop whole frames at the
    front, clip the reads to the bytes left, and try one split or byte-by-byte reads of the
    shortest prefix that still fails."""
    data = case.get("data")
    if case["kind"] in ("mutation", "error", "heartbeat") or not data:
        return case
    tries = 0

    def attempt(candidate):
        nonlocal tries
        tries += 1
        return fails(candidate)

    best = dict(case)
    # Whole frames off the front, while the rest still fails.
    frames, _, _ = module.decode_all(best["data"], best["direction"])
    for frame in frames:
        if tries >= budget:
            break
        rest = best["data"][len(frame.frame):]
        if not rest:
            break
        candidate = dict(best, data=rest, chunks=_clip([], rest))
        if attempt(candidate):
            best = candidate
        else:
            candidate = dict(best, data=rest, chunks=_clip(_shift(best.get("chunks") or [], len(frame.frame)), rest))
            if best.get("chunks") and attempt(candidate):
                best = candidate
            else:
                break
    # Bytes off the end (reads clipped to what is left).
    while len(best["data"]) > 1 and tries < budget:
        candidate = dict(best, data=best["data"][:-1])
        candidate["chunks"] = _clip(best.get("chunks") or [], candidate["data"])
        if attempt(candidate):
            best = candidate
        else:
            break
    # Simpler reads: none, one split, or byte by byte.
    chunks = best.get("chunks") or []
    if chunks and tries < budget:
        n = len(best["data"])
        options = [[]] + [[k] for k in range(1, n)] + [[1] * n]
        for option in options:
            if tries >= budget or option == chunks:
                break
            if len(option) <= len(chunks) and attempt(dict(best, chunks=option)):
                best = dict(best, chunks=option)
                break
    return best


def _clip(chunks: list[int], data: bytes) -> list[int]:
    out, total = [], 0
    for size in chunks:
        if total + size > len(data):
            break
        out.append(size)
        total += size
    return out


def _shift(chunks: list[int], skip: int) -> list[int]:
    """Reads of the stream after its first ``skip`` bytes are gone."""
    out, at = [], 0
    for size in chunks:
        start, end = at, at + size
        at = end
        if end <= skip:
            continue
        out.append(end - max(start, skip))
    return out


def _same(expected, actual) -> bool:
    for outcome in (expected, actual):
        if isinstance(outcome, tuple) and outcome[0] in ("reference crashed", "crash"):
            return False
    return agree(expected, actual)


def _difference(expected, actual) -> str:
    if isinstance(actual, tuple) and actual[0] == "crash":
        lines = [line for line in actual[1].splitlines() if "ERROR:" in line or "SUMMARY" in line
                 or "runtime error" in line]
        return "the C++ codec crashed: " + (lines[0].strip() if lines else "worker died")
    if isinstance(expected, tuple) and expected[0] == "reference crashed":
        return f"the reference codec crashed: {expected[1]}"
    return difference(expected, actual)


class Differential:
    """Runs batches until a deadline; ``stats`` is read by the progress printer."""

    def __init__(self, proto: ir.ProtocolIR, module, native, seed: int,
                 corpus_dir: Optional[Path] = None):
        self.proto = proto
        self.module = module
        self.native = native
        self.generator = Generator(proto, module, random.Random(seed), corpus_dir)
        self.stats = DiffStats()
        self.signatures: set[str] = set()

    def run(self, deadline: float, stop: Callable[[], bool],
            on_finding: Callable[[DiffFinding], None]) -> None:
        while time.monotonic() < deadline and not stop():
            for case in self.generator.batch():
                self.stats.cases += 1
                kind = case["kind"]
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
                if kind == "corpus":
                    self.stats.corpus_replayed += 1
                finding = compare(self.module, self.native, case)
                if finding is not None:
                    signature = difference_signature(finding.difference)
                    if signature not in self.signatures:
                        self.signatures.add(signature)
                        self.stats.findings.append(finding)
                        on_finding(finding)
                    if stop():
                        return
                if time.monotonic() >= deadline:
                    return


def difference_signature(text: str) -> str:
    """A difference without its numbers and bytes, to report each kind of bug once."""
    import re

    return re.sub(r"[0-9a-f]{6,}|\d+", "#", text)[:120]
