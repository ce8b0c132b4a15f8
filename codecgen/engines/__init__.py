"""The two engines behind one interface: the Python reference codec and the compiled C++ codec.

``Engine`` decodes a stream with either and returns one JSON form (what ``decode``,
``replay``, ``sample`` and the tests compare); ``encode_values`` builds frames from JSON
field values; ``codecgen.engines.native`` compiles and loads the C++ codec (``verify``,
``fuzz``, ``bench``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from codecgen import ir
from codecgen.ir.walk import NodeVisitor, children
from codecgen.backends import python as pyb
from codecgen.errors import UserError


MESSAGE_TYPES = [t.name for t in ir.MessageType]
ENGINES = ("python", "cpp")


def frame_json(frame: Any) -> dict:
    """A native (C++) frame as the same JSON object the Python engine prints (``as_json``)."""
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


@dataclass
class Decoded:
    frames: list = field(default_factory=list)  # each frame's JSON object (`codecgen decode`)
    offsets: list = field(default_factory=list)  # where each frame starts in the stream
    held: int = 0  # bytes left at the end that do not make a whole frame
    error: Optional[str] = None
    error_offset: Optional[int] = None

    def add(self, offset: int, obj: dict) -> None:
        self.offsets.append(offset)
        self.frames.append(obj)


class Engine:
    """``python`` (the reference codec, in-process) or ``cpp`` (the generated or a hand-edited
    C++ codec, compiled once against the host model); both decode to one JSON form."""

    def __init__(self, proto: ir.ProtocolIR, engine: str = "python", codec_dir: Optional[str] = None,
                 native=None):
        """``native``: an already loaded C++ codec to use (its owner closes it)."""
        if engine not in ENGINES:
            raise UserError(f"--engine {engine}: unknown engine ({', '.join(ENGINES)})")
        self.proto = proto
        self.name = engine
        self._native = None
        self._owned = native is None
        if engine == "python":
            self._module = pyb.load(proto)
        elif native is not None:
            self._native = native
        else:
            from codecgen.engines.native import native_codec

            self._native = native_codec(proto, codec_dir=codec_dir)

    def decode(self, data: bytes, direction: str) -> Decoded:
        """Every whole frame of one direction's stream, where each starts, and the first error."""
        out = Decoded()
        offset = 0
        if self._native is None:
            frames, held, error = self._module.decode_all(data, direction)
            for f in frames:
                out.add(offset, f.as_json())
                offset += len(f.frame)
        else:
            result = self._native.decode_stream(data, [len(data)] if data else [], direction)
            for f in result.frames:
                out.add(offset, frame_json(f))
                offset += len(f.data)
            error = result.error
            if result.violation:
                error = f"codec broke the framework contract: {result.violation}"
            held = len(data) - offset
        if error is not None:
            out.error, out.error_offset = error, offset
        else:
            out.held = held
        return out

    def close(self) -> None:
        if self._native is not None and self._owned:
            self._native.close()
        self._native = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_stream(proto: ir.ProtocolIR, data: bytes, direction: str, engine: str = "python",
                  codec_dir: Optional[str] = None) -> Decoded:
    """``Engine(proto, engine, codec_dir).decode(data, direction)``, closing the engine."""
    with Engine(proto, engine, codec_dir) as running:
        return running.decode(data, direction)


class _Convert(NodeVisitor):
    """JSON value -> construct value for one node (strings become bytes)."""

    def _bytes(self, node, value: Any, where: str):
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict) and set(value) == {"hex"}:
            try:
                return bytes.fromhex(value["hex"])
            except ValueError:
                raise UserError(f"{where}: bad hex string") from None
        raise UserError(f"{where}: expected a string or {{\"hex\": ...}}")

    visit_Bytes = _bytes
    visit_Extension = _bytes  # an extension field takes its raw bytes

    def visit_Array(self, node, value, where):
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list")
        return [self.visit(node.element, v, f"{where}[{i}]") for i, v in enumerate(value)]

    def visit_Struct(self, node, value, where):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object")
        known = {f.name: f for f in node.fields}
        out = {}
        for key, v in value.items():
            if key not in known:
                raise UserError(f"{where}: no field {key!r} (fields: {', '.join(known)})")
            out[key] = self.visit(known[key].node, v, f"{where}.{key}")
        return out

    def visit_Bits(self, node, value, where):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected an object of bit fields")
        bits = {b.name: b for b in node.fields}
        for key, v in value.items():
            if key not in bits:
                raise UserError(f"{where}: no field {key!r} (fields: {', '.join(bits)})")
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, int) or not 0 <= v < (1 << bits[key].width):
                raise UserError(f"{where}.{key}: {v!r} does not fit {bits[key].width} bits")
        return {k: int(v) for k, v in value.items()}

    def visit_Region(self, node, value, where):
        return self.visit(node.inner, value, where)

    def visit_If(self, node, value, where):
        return self.visit(node.then, value, where)

    def visit_Switch(self, node, value, where):
        for case in children(node):
            if isinstance(case, ir.Struct) and isinstance(value, dict) and \
                    set(value) <= {f.name for f in case.fields}:
                return self.visit(case, value, where)
        raise UserError(f"{where}: fields {sorted(value) if isinstance(value, dict) else value!r} "
                        "match no case of the Switch")

    def visit_Int(self, node, value, where):
        if isinstance(value, str) and node.enum:
            mapping = dict(node.enum)
            if value not in mapping:
                raise UserError(f"{where}: {value!r} is not one of {', '.join(mapping)}")
            return mapping[value]
        value = self._integer(node, value, where)
        if not node.type.min_value <= value <= node.type.max_value:
            raise UserError(f"{where}: {value} does not fit the field ({node.type.min_value}..{node.type.max_value})")
        return value

    def _integer(self, node, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer")
        return value

    def visit_ZigZag(self, node, value, where):
        value = self._integer(node, value, where)
        if not -(1 << 63) <= value < (1 << 63):
            raise UserError(f"{where}: {value} does not fit a 64-bit signed integer")
        return value

    visit_Const = visit_Padding = visit_VarInt = _integer


_convert = _Convert().visit


def _flatten(obj: dict, prefix: tuple, vals: dict, arrays: dict) -> None:
    """JSON nesting -> field paths: objects nest, lists are arrays, the rest are leaf values."""
    for key, value in obj.items():
        path = prefix + (key,)
        if isinstance(value, dict):
            _flatten(value, path, vals, arrays)
        elif isinstance(value, list):
            arrays[path] = value
        else:
            vals[path] = value


def encode_values(proto: ir.ProtocolIR, obj: Any, where: str, direction: str = "request") -> bytes:
    """Build one frame from a JSON object of field values (defaults for the rest)."""
    d = 0 if direction == "request" else 1
    module = pyb.load(proto)
    converted = _convert(proto.frame, obj, where)
    vals, arrays = {}, {}
    _flatten(converted, (), vals, arrays)
    container = pyb.fresh_container(module, vals, d)
    for path, items in arrays.items():
        holder = container
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = items
    try:
        return module.FRAME_COMPILED.build(container, _direction=d)
    except Exception as exc:  # construct reports many error types
        raise UserError(f"{where}: cannot build a frame: {str(exc).splitlines()[-1]}") from None
