"""Construct classes codecgen adds to the DSL, for wire types plain construct lacks.

``BoundedVarInt(max_bytes)``: unsigned LEB128 (``construct.VarInt``) of at most ``max_bytes``
bytes, e.g. MQTT's Variable Byte Integer (4 bytes, values below 2^28). ``construct.VarInt`` has
no bound (the frontend gives it 10 bytes, 64 bits); a longer encoding is an error in both
engines and in construct itself.
"""

from __future__ import annotations

from construct import ExplicitError, VarInt, stream_read, stream_write

__all__ = ["BoundedVarInt"]


class BoundedVarInt(type(VarInt)):
    def __init__(self, max_bytes: int):
        super().__init__()
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or not 1 <= max_bytes <= 10:
            raise ValueError(f"BoundedVarInt: max_bytes must be 1..10, not {max_bytes!r}")
        self.max_bytes = max_bytes

    def _parse(self, stream, context, path):
        value = 0
        for i in range(self.max_bytes):
            byte = stream_read(stream, 1, path)[0]
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value
        raise ExplicitError(f"varint longer than {self.max_bytes} bytes", path=path)

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, int) or obj < 0 or obj >= 1 << (7 * self.max_bytes):
            raise ExplicitError(f"{obj!r} does not fit a varint of {self.max_bytes} bytes", path=path)
        out, value = bytearray(), obj
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
        stream_write(stream, bytes(out), len(out), path)
        return obj

    def _emitparse(self, code):
        raise NotImplementedError  # no compiled form: Struct.compile() falls back to _parse

    def __repr__(self):
        return f"BoundedVarInt({self.max_bytes})"
