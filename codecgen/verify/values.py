"""Random, valid field values for a frame, generated from the IR.

``random_values(proto, rng)`` returns a container-shaped dict that the Python
reference codec builds into a valid frame.  Integers are biased towards their
edges (0, 1, max, min); fields that size or count something stay small so
frames stay short; strings and bytes are short and include non-ASCII bytes.
Extension fields take a value from their ``random_value`` hook (codecgen/ext/base.py);
enum bit fields, like enum integers, mostly take one of their named values.
Used by ``verify`` (differential cases), ``fuzz`` (seeds) and the tests.
"""

from __future__ import annotations

import random
from typing import Any, Dict, Optional

from codecgen import ir
from codecgen.ir.expr import EvalError, evaluate
from codecgen.ir.facts import facts
from codecgen.ir.walk import NodeVisitor


class ValueGen(NodeVisitor):
    def __init__(self, proto: ir.ProtocolIR, rng: random.Random, max_bytes: int = 24, direction: int = 0,
                 module=None):
        self.proto = proto
        self.module = module  # the reference module, for extension hooks (loaded when needed)
        self.rng = rng
        self.max_bytes = max_bytes
        self.sizing = facts(proto).decode_refs
        self.derived = {f.path for f in ir.iter_fields(proto.frame)
                        if isinstance(f.node, ir.Int) and f.node.derived is not None}
        self.values: Dict[ir.Path, Any] = {ir.DIRECTION_PATH: direction}
        self.header_map = proto.roles.header_map

    # ------------------------------------------------------------------ leaves

    def int_value(self, path: ir.Path, lo: int, hi: int) -> int:
        if path in self.sizing:
            return self.rng.randint(max(lo, 0), min(hi, 12))
        pick = self.rng.random()
        if pick < 0.15:
            return lo
        if pick < 0.30:
            return hi
        if pick < 0.45:
            return min(max(0, lo), hi)
        if pick < 0.55:
            return min(max(1, lo), hi)
        return self.rng.randint(lo, hi)

    def data(self, size: Optional[int] = None) -> bytes:
        if size is None:
            size = self.rng.choice([0, 1, 2, 3, 5, 8, self.rng.randint(0, self.max_bytes)])
        alphabet = b"abcXYZ019-_./\x00\xff\xc3\xa9"
        return bytes(self.rng.choice(alphabet) for _ in range(size))

    # ------------------------------------------------------------------ tree

    def struct(self, st: ir.Struct, holder: dict) -> None:
        for f in st.fields:
            value = self.node(f.path, f.node)
            if value is not _SKIP:
                holder[f.name] = value

    def node(self, path: ir.Path, node: ir.Node):
        return self.visit(node, path)

    def visit_Const(self, node, path):
        return _SKIP

    visit_Padding = visit_Const

    def visit_Int(self, node, path):
        if node.derived is not None:
            return 0
        t = node.type
        if node.enum and self.rng.random() < 0.7:
            value = self.rng.choice([v for _, v in node.enum])
        else:
            value = self.int_value(path, t.min_value, t.max_value)
        self.values[path] = value
        return value

    def visit_Bits(self, node, path):
        out = {}
        for b in node.fields:
            if b.enum and self.rng.random() < 0.7:
                value = self.rng.choice([v for _, v in b.enum])
            else:
                value = self.int_value(path + (b.name,), 0, (1 << b.width) - 1)
            self.values[path + (b.name,)] = value
            out[b.name] = value
        return out

    def visit_VarInt(self, node, path):
        value = self.int_value(path, 0, min((1 << 63) - 1, (1 << (7 * node.max_bytes)) - 1))
        self.values[path] = value
        return value

    def visit_ZigZag(self, node, path):
        value = self.int_value(path, -(1 << 63), (1 << 63) - 1)
        self.values[path] = value
        return value

    def visit_Bytes(self, node, path):
        size = None
        if node.size is not None and not self._depends_on_derived(node.size):
            size = self.eval(node.size)
            if size is None or size < 0 or size > 4096:
                raise _Unbuildable(path)
        elif node.prefix is not None:
            size = min(self.rng.choice([0, 1, 3, 8, self.max_bytes]), node.prefix.max_value)
        value = self.data(size)
        self.values[path] = value
        return value

    def visit_Extension(self, node, path):
        return self.extension(path, node)

    def visit_Struct(self, node, path):
        out: dict = {}
        self.struct(node, out)
        return out

    def visit_Region(self, node, path):
        return self.node(path, node.inner)

    def visit_Array(self, node, path):
        if node.count is not None and not self._depends_on_derived(node.count):
            count = self.eval(node.count)
            if count is None or count < 0 or count > 64:
                raise _Unbuildable(path)
        else:
            count = self.rng.choice([0, 1, 2, 3])
        if node.prefix is not None:
            count = min(count, node.prefix.max_value)
        saved = dict(self.values)
        items = [self.node(path + ("value",), node.element) if not isinstance(node.element, ir.Struct)
                 else self.node(path, node.element) for _ in range(count)]
        self.values = saved
        self.values[path] = items
        return items

    def visit_If(self, node, path):
        cond = self.eval(node.cond)
        return self.node(path, node.then) if cond else None

    def visit_Switch(self, node, path):
        key = self.eval(node.key)
        for value, case in node.cases:
            if key == value:
                return self.node(path, case)
        if node.default is not None:
            return self.node(path, node.default)
        return None

    def extension(self, path: ir.Path, node: ir.Extension):
        """A value from the extension's ``random_value(rng, params)`` hook (None: redraw)."""
        from codecgen.backends import python as pyb

        if node.size is not None and not self._depends_on_derived(node.size):
            raise _Unbuildable(path)  # a plain size field cannot be made to match a random value
        if self.module is None:
            self.module = pyb.load(self.proto)
        cls = self.module.EXTENSIONS[node.kind]
        params = {name: self.eval(e) for name, e in node.params}
        value = cls.random_value(self.rng, params)
        if value is None:
            raise _Unbuildable(path)
        self.values[path] = value
        return value

    def _depends_on_derived(self, expr: ir.Expr) -> bool:
        return any(p in self.derived for p in ir.expr_refs(expr))

    def eval(self, e: ir.Expr) -> Optional[int]:
        """``e`` over the values drawn so far (absent ones are 0); None where it has no value."""
        try:
            return evaluate(e, self._leaf)
        except EvalError:
            return None

    def _leaf(self, e) -> int:
        if isinstance(e, ir.Ref):
            return int(self.values.get(e.path, 0))
        return len(self.values.get(e.path, b""))  # bytes, arrays and extension values


class _Unbuildable(Exception):
    pass


_SKIP = object()


def random_values(proto: ir.ProtocolIR, rng: random.Random, direction: int = 0,
                  module=None) -> Optional[dict]:
    """A container-shaped dict of valid values, or None when this draw cannot build.
    ``module``: the reference module (backends.python.load), needed by extension fields."""
    gen = ValueGen(proto, rng, direction=direction, module=module)
    out: dict = {}
    try:
        gen.struct(proto.frame, out)
    except _Unbuildable:
        return None
    return out


def random_frame(proto: ir.ProtocolIR, module, rng: random.Random, attempts: int = 50,
                 direction: str = "request") -> bytes:
    """A valid frame built by the reference codec (``module`` from backends.python.load)."""
    d = 0 if direction == "request" else 1
    for _ in range(attempts):
        values = random_values(proto, rng, d, module)
        if values is None:
            continue
        try:
            frame = module.FRAME_COMPILED.build(values, _direction=d)
        except Exception:  # noqa: BLE001 - an unlucky draw (e.g. a derived value overflowing)
            continue
        if len(frame) <= proto.max_frame_size:
            try:
                size = module.Codec().frame_size(frame, direction)
            except module.ProtocolError:
                continue
            if size == len(frame):
                return frame
    raise RuntimeError(f"{proto.name}: could not build a valid random frame in {attempts} draws")
