"""One engine over whole byte streams: the frames, where each starts, and the first error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from codecgen import ir

MESSAGE_TYPES = [t.name for t in ir.MessageType]


@dataclass
class Decoded:
    frames: list = field(default_factory=list)  # (offset, decode fields as `codecgen decode` prints them)
    held: int = 0  # bytes left at the end that do not make a whole frame
    error: Optional[str] = None
    error_offset: Optional[int] = None


def _native_json(frame) -> dict:
    """A native (C++) frame as the JSON object the Python engine prints."""
    text = lambda b: b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else b  # noqa: E731
    mtype, status = frame.message_type, frame.response_status
    return {
        "message_type": MESSAGE_TYPES[mtype] if isinstance(mtype, int) else mtype,
        "request_id": frame.request_id,
        "response_status": ["Ok", "Error"][status] if isinstance(status, int) else status,
        "frame_size": len(frame.data),
        "header_size": frame.header_size,
        "body_size": frame.body_size,
        "operation_name": text(frame.operation_name),
        "metadata": {text(k): text(v) for k, v in frame.strings.items()},
    }


class Engine:
    """``python`` (the reference codec, in-process) or ``cpp`` (the generated C++ codec,
    compiled once against the host model)."""

    def __init__(self, proto: ir.ProtocolIR, engine: str = "python", codec_dir: Optional[str] = None):
        self.proto = proto
        self.name = engine
        self._native = None
        if engine == "python":
            from codecgen.backends import python as pyb

            self._module = pyb.load(proto)
        elif engine == "cpp":
            from codecgen.verify.native import native_codec

            self._native = native_codec(proto, codec_dir=codec_dir)
        else:
            from codecgen.errors import UserError

            raise UserError(f"--engine {engine}: unknown engine (python, cpp)")

    def decode(self, data: bytes, direction: str) -> Decoded:
        out = Decoded()
        offset = 0
        if self._native is None:
            frames, held, error = self._module.decode_all(data, direction)
            for f in frames:
                out.frames.append((offset, f.as_json()))
                offset += len(f.frame)
        else:
            result = self._native.decode_stream(data, [len(data)] if data else [], direction)
            for f in result.frames:
                out.frames.append((offset, _native_json(f)))
                offset += len(f.data)
            error = result.error
            if getattr(result, "violation", None):
                error = f"codec broke the framework contract: {result.violation}"
            held = len(data) - offset
        if error is not None:
            out.error, out.error_offset = error, offset
        else:
            out.held = held
        return out

    def close(self) -> None:
        if self._native is not None:
            self._native.close()
            self._native = None
