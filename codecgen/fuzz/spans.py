"""Where each field of a concrete frame lies: the IR walked over real bytes.

``trace(proto, frame, direction)`` follows the same framing rules as the reference walker
(codecgen/backends/python/emit.py) over a valid frame and returns a ``Span`` for every wire
element it reads: integers, bit groups, constants, varints, the length prefix of a string or
region, the count prefix of an array, and the bytes of strings, bodies and extensions. The
differential fuzzer mutates frames through these spans (a length one too long, a count beyond
the bytes, a constant's byte changed...) instead of at random offsets.

The walk stops quietly at the first thing it cannot follow (spans before it are returned), so
it also works on frames that are only nearly valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from codecgen import ir
from codecgen.ir.expr import EvalError
from codecgen.ir.expr import evaluate as evaluate_expr
from codecgen.ir.facts import facts
from codecgen.ir.walk import NodeVisitor

INT, BITS, CONST, VARINT, LENGTH, COUNT, REGION, BYTES, PADDING = (
    "int", "bits", "const", "varint", "length", "count", "region", "bytes", "padding")


@dataclass
class Span:
    path: ir.Path
    kind: str
    start: int
    end: int
    itype: Optional[ir.IntType] = None  # for int, length, count, region prefixes
    value: Optional[int] = None
    sizing: bool = False  # the value sizes, counts or selects something
    limit: Optional[int] = None  # end of the enclosing region (or max_frame_size)
    node: object = None

    @property
    def width(self) -> int:
        return self.end - self.start


class _Stop(Exception):
    pass


class Tracer(NodeVisitor):
    def __init__(self, proto: ir.ProtocolIR, data: bytes, direction: int):
        self.proto = proto
        self.data = data
        self.spans: list[Span] = []
        self.refs = facts(proto).decode_refs
        self.values: dict[ir.Path, int] = {ir.DIRECTION_PATH: direction}

    # ------------------------------------------------------------------ reading

    def take(self, c: int, k: int, lim: int) -> None:
        if k < 0 or c + k > lim or c + k > len(self.data):
            raise _Stop()

    def read_int(self, c: int, t: ir.IntType, lim: int) -> int:
        self.take(c, t.width, lim)
        order = "little" if t.endian is ir.Endian.LITTLE else "big"
        return int.from_bytes(self.data[c:c + t.width], order, signed=t.signed)

    def eval(self, e: ir.Expr) -> int:
        try:
            return evaluate_expr(e, self._leaf)
        except EvalError:
            raise _Stop() from None

    def _leaf(self, e) -> int:
        if e.path not in self.values:
            raise _Stop()
        return self.values[e.path]

    # ------------------------------------------------------------------ walking

    def struct(self, st: ir.Struct, c: int, lim: int) -> int:
        for f in st.fields:
            c = self.field(f.path, f.node, c, lim)
        return c

    def sub(self, path, node, c, lim) -> int:
        return self.struct(node, c, lim) if isinstance(node, ir.Struct) else self.field(path, node, c, lim)

    def field(self, path: ir.Path, node, c: int, lim: int) -> int:
        return self.visit(node, path, c, lim)

    def visit_Int(self, node, path, c, lim):
        value = self.read_int(c, node.type, lim)
        self.values[path] = value
        self.spans.append(Span(path, INT, c, c + node.type.width, node.type, value,
                               path in self.refs, lim, node))
        return c + node.type.width

    def visit_Bits(self, node, path, c, lim):
        self.take(c, node.width, lim)
        bits = int.from_bytes(self.data[c:c + node.width], "big")
        sizing = False
        for b in node.fields:
            shift = node.width * 8 - b.offset - b.width
            self.values[path + (b.name,)] = (bits >> shift) & ((1 << b.width) - 1)
            sizing |= path + (b.name,) in self.refs
        self.spans.append(Span(path, BITS, c, c + node.width, None, bits, sizing, lim, node))
        return c + node.width

    def visit_Const(self, node, path, c, lim):
        self.take(c, len(node.value), lim)
        self.spans.append(Span(path, CONST, c, c + len(node.value), None, None, False, lim, node))
        return c + len(node.value)

    def visit_Padding(self, node, path, c, lim):
        self.take(c, node.size, lim)
        self.spans.append(Span(path, PADDING, c, c + node.size, None, None, False, lim, node))
        return c + node.size

    def visit_VarInt(self, node, path, c, lim):
        value, end = self.varint(c, lim, node.max_bytes)
        self.values[path] = value
        self.spans.append(Span(path, VARINT, c, end, None, value, path in self.refs, lim, node))
        return end

    def visit_ZigZag(self, node, path, c, lim):
        raw, end = self.varint(c, lim, node.max_bytes)
        value = (raw >> 1) ^ -(raw & 1)
        self.values[path] = value
        self.spans.append(Span(path, VARINT, c, end, None, raw, path in self.refs, lim, node))
        return end

    def visit_Bytes(self, node, path, c, lim):
        if node.prefix is not None:
            size = self.read_int(c, node.prefix, lim)
            self.spans.append(Span(path, LENGTH, c, c + node.prefix.width, node.prefix, size,
                                   True, lim, node))
            c += node.prefix.width
        elif node.prefix_varint:
            size, end = self.varint(c, lim)
            self.spans.append(Span(path, LENGTH, c, end, None, size, True, lim, node))
            c = end
        elif node.size is not None:
            size = self.eval(node.size)
        else:
            size = lim - c
        self.take(c, size, lim)
        self.values[path] = size
        self.spans.append(Span(path, BYTES, c, c + size, None, size, False, lim, node))
        return c + size

    def visit_Struct(self, node, path, c, lim):
        return self.struct(node, c, lim)

    def visit_Region(self, node, path, c, lim):
        size = self.read_int(c, node.prefix, lim)
        self.spans.append(Span(path, REGION, c, c + node.prefix.width, node.prefix, size, True,
                               lim, node))
        c += node.prefix.width
        if node.include_length:
            size -= node.prefix.width
        self.take(c, size, lim)
        inner = c + size
        end = self.sub(path, node.inner, c, inner)
        if end != inner:
            raise _Stop()
        return end

    def visit_Array(self, node, path, c, lim):
        if node.prefix is not None:
            count = self.read_int(c, node.prefix, lim)
            self.spans.append(Span(path, COUNT, c, c + node.prefix.width, node.prefix, count,
                                   True, lim, node))
            c += node.prefix.width
        else:
            count = self.eval(node.count)
        if count < 0 or count > node.max_count:
            raise _Stop()
        self.values[path] = count
        for _ in range(count):
            c = self.sub(path, node.element, c, lim)
        return c

    def visit_If(self, node, path, c, lim):
        return self.sub(path, node.then, c, lim) if self.eval(node.cond) else c

    def visit_Switch(self, node, path, c, lim):
        key = self.eval(node.key)
        for value, case in node.cases:
            if key == value:
                return self.sub(path, case, c, lim)
        return self.sub(path, node.default, c, lim) if node.default is not None else c

    def visit_Extension(self, node, path, c, lim):
        size = lim - c if node.size is None else self.eval(node.size)
        self.take(c, size, lim)
        self.values[path] = size
        self.spans.append(Span(path, BYTES, c, c + size, None, size, False, lim, node))
        return c + size

    def varint(self, c: int, lim: int, max_bytes: int = 10) -> tuple[int, int]:
        value = 0
        for i in range(max_bytes):
            self.take(c, 1, lim)
            byte = self.data[c]
            c += 1
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value, c
        raise _Stop()


def trace(proto: ir.ProtocolIR, frame: bytes, direction: int | str = 0) -> list[Span]:
    """The spans of ``frame``'s fields, in wire order (see the module docstring)."""
    if isinstance(direction, str):
        direction = 1 if direction == "response" else 0
    tracer = Tracer(proto, frame, direction)
    try:
        tracer.struct(proto.frame, 0, proto.max_frame_size)
    except (_Stop, RecursionError):
        pass
    return tracer.spans


def trace_values(proto: ir.ProtocolIR, frame: bytes, direction: int | str = 0):
    """``trace`` plus the values the walk read: {path: integer, or size of bytes / count}."""
    if isinstance(direction, str):
        direction = 1 if direction == "response" else 0
    tracer = Tracer(proto, frame, direction)
    try:
        tracer.struct(proto.frame, 0, proto.max_frame_size)
    except (_Stop, RecursionError):
        pass
    return tracer.spans, tracer


def evaluate(tracer: Tracer, expr: ir.Expr, overrides: dict) -> Optional[int]:
    """``expr`` over the values a trace read, some of them replaced; None if it cannot."""
    saved = dict(tracer.values)
    tracer.values.update(overrides)
    try:
        return tracer.eval(expr)
    except (_Stop, OverflowError):
        return None
    finally:
        tracer.values = saved


def encode_int(value: int, t: ir.IntType) -> bytes:
    """``value`` in ``t``'s width and byte order, wrapped like a C cast."""
    bits = t.width * 8
    raw = value & ((1 << bits) - 1)
    return raw.to_bytes(t.width, "little" if t.endian is ir.Endian.LITTLE else "big")


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 (``ir.VarInt``) of ``value``'s low 70 bits. The engines' own copies live
    in the generated code; extensions embed theirs (their sources stand alone)."""
    value &= (1 << 70) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
