"""Run differential cases on the reference codec and the compiled C++ codec; compare outcomes.

Every case is reduced, on each engine, to an *outcome*: a plain, comparable
value (frames with their metadata, bytes held, error or not; encoded bytes or
"error").  Error texts may differ between engines; whether an error happened
may not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from codecgen.hostmodel.native import BadInput, CodecError, ContractViolation, NativeCodec

_TEXT = "surrogateescape"


def _b(value) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", _TEXT)


# --------------------------------------------------------------------------- outcomes


def _frame_outcome(message_type, request_id, response_status, header_size, body_size, operation,
                   strings, data) -> dict:
    return {
        "message_type": message_type,
        "request_id": request_id,
        "response_status": response_status,
        "header_size": header_size,
        "body_size": body_size,
        "operation_name": _b(operation),
        "strings": {_b(k): _b(v) for k, v in strings.items()},
        "frame": bytes(data),
    }


def python_decode(module, case) -> dict:
    frames, held, error = module.decode_all(case["data"], case["direction"])
    return {
        "frames": [_frame_outcome(f.message_type, f.request_id, f.response_status, f.header_size,
                                  f.body_size, f.operation_name, f.strings, f.frame) for f in frames],
        "error": error is not None,
        "held": None if error is not None else held,
    }


def cpp_decode(native: NativeCodec, case) -> dict:
    chunks = list(case.get("chunks") or [])
    result = native.decode_stream(case["data"], chunks, case["direction"])
    if result.violation:
        return {"violation": result.violation}
    return {
        "frames": [_frame_outcome(f.message_type.name, f.request_id, f.response_status.name,
                                  f.header_size, f.body_size, f.operation_name, f.strings, f.data)
                   for f in result.frames],
        "error": result.error is not None,
        "held": None if result.error is not None else result.held + result.pending,
    }


def _python_call(fn: Callable[[], bytes]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - any exception of the reference is "error"
        return ("error", type(exc).__name__)


def _cpp_call(fn: Callable[[], bytes]) -> Any:
    try:
        return fn()
    except CodecError as exc:
        return ("error", "EnvoyException")
    except ContractViolation as exc:
        return ("violation", str(exc))
    except BadInput as exc:
        return ("bad input", str(exc))


def _same_kind(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] == b[0] and a[0] in ("error", "bad input")
    return a == b


def python_outcome(module, case) -> Any:
    kind = case["kind"]
    if kind in ("mutation", "error", "heartbeat"):
        codec = module.Codec()
        md = None
        if case.get("data") is not None:
            try:
                md = codec.decode(bytearray(case["data"]), case["direction"])
            except module.ProtocolError as exc:
                return ("bad input", str(exc))
            if md is None:
                return ("bad input", "not a whole frame")
        if kind == "mutation":
            return _python_call(lambda: bytes(codec.encode(md, case["mutation"], case["data"])))
        if kind == "error":
            return _python_call(lambda: bytes(codec.on_error(md, case["error_type"], case["message"])))
        return _python_call(lambda: bytes(codec.heartbeat(md)))
    return python_decode(module, case)


def cpp_outcome(native: NativeCodec, case) -> Any:
    kind = case["kind"]
    if kind == "mutation":
        return _cpp_call(lambda: native.encode(case["data"], case["direction"], case["mutation"], case["path"]))
    if kind == "error":
        return _cpp_call(lambda: native.on_error(case["data"], case["direction"], case["error_type"],
                                                 case["message"]))
    if kind == "heartbeat":
        return _cpp_call(lambda: native.heartbeat(case["data"], case["direction"]))
    return cpp_decode(native, case)


def agree(expected, actual) -> bool:
    if isinstance(expected, tuple) or isinstance(actual, tuple):
        return _same_kind(expected, actual)
    return expected == actual


def difference(expected, actual) -> str:
    """A one-line description of how two outcomes differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if "violation" in actual:
            return f"the C++ codec broke the framework contract: {actual['violation']}"
        if expected["error"] != actual["error"]:
            return f"error: python {expected['error']}, cpp {actual['error']}"
        if len(expected["frames"]) != len(actual["frames"]):
            return f"frames: python {len(expected['frames'])}, cpp {len(actual['frames'])}"
        for i, (e, a) in enumerate(zip(expected["frames"], actual["frames"])):
            for key in e:
                if e[key] != a[key]:
                    return f"frame {i} {key}: python {_short(e[key])}, cpp {_short(a[key])}"
        return f"held: python {expected['held']}, cpp {actual['held']}"
    return f"python {_short(expected)}, cpp {_short(actual)}"


def _short(value) -> str:
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 48 else value[:48].hex() + f"... ({len(value)} bytes)"
    text = repr(value)
    return text if len(text) <= 160 else text[:160] + "..."


# --------------------------------------------------------------------------- reproducers


def case_to_json(case: dict) -> dict:
    out = dict(case)
    if out.get("data") is not None:
        out["data"] = out["data"].hex()
    return out


def case_from_json(obj: dict) -> dict:
    case = dict(obj)
    if case.get("data") is not None:
        case["data"] = bytes.fromhex(case["data"])
    return case


def minimize(case: dict, fails: Callable[[dict], bool], budget: int = 400) -> dict:
    """Shrink a failing case: one read instead of many, then fewer bytes at the end."""
    best = dict(case)
    tries = 0
    if best.get("chunks"):
        candidate = dict(best, chunks=[])
        tries += 1
        if fails(candidate):
            best = candidate
    if best["kind"] in ("mutation", "error", "heartbeat") or best.get("data") is None:
        return best
    step = max(1, len(best["data"]) // 2)
    while step >= 1 and tries < budget:
        shrunk = False
        data = best["data"]
        if len(data) > step:
            candidate = dict(best, data=data[: len(data) - step],
                             chunks=[c for c in best.get("chunks", [])])
            if sum(candidate["chunks"]) > len(candidate["data"]):
                candidate["chunks"] = []
            tries += 1
            if fails(candidate):
                best, shrunk = candidate, True
        if not shrunk:
            step //= 2
    return best


@dataclass
class Report:
    counts: dict = field(default_factory=dict)
    mismatches: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def run_cases(module, native: NativeCodec, cases, progress: Optional[Callable] = None,
              stop_after: int = 1) -> Report:
    report = Report()
    start = time.perf_counter()
    for case in cases:
        kind = case["kind"]
        report.counts[kind] = report.counts.get(kind, 0) + 1
        expected, actual = python_outcome(module, case), cpp_outcome(native, case)
        if not agree(expected, actual):
            fails = lambda c: not agree(python_outcome(module, c), cpp_outcome(native, c))  # noqa: E731
            small = minimize(case, fails)
            detail = difference(python_outcome(module, small), cpp_outcome(native, small))
            report.mismatches.append({"case": small, "difference": detail})
            if len(report.mismatches) >= stop_after:
                break
        if progress is not None:
            progress(report)
    report.seconds = time.perf_counter() - start
    return report


def write_reproducer(path: Path, spec: str, mismatch: dict) -> None:
    payload = {"spec": spec, "difference": mismatch["difference"], "case": case_to_json(mismatch["case"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
