"""Python backend: IR -> the pieces of the standalone reference codec module.

The module (``codec.py.j2``) holds a construct definition of the frame, a
straight-line *walker* that decides, from a growing buffer, whether a whole
frame is present (and refuses garbage as early as the C++ codec does), and the
role functions that read a parsed container.  This file turns IR nodes into
those pieces; the template only places them.
"""

from __future__ import annotations

from typing import Iterator, List, Optional

from codecgen import ir, naming
from codecgen.ir.expr import BITWISE, COMPARISONS, LOGICAL, ExprTranslator
from codecgen.ir.facts import facts, min_size
from codecgen.ir.walk import NodeVisitor



def ident(path: ir.Path) -> str:
    if path == ir.DIRECTION_PATH:
        return "direction"
    return "_".join(p.lstrip("_") or "x" for p in path).replace("-", "_")


def fmt_int(t: ir.IntType) -> str:
    if t.width in (1, 2, 4, 8):
        bits = t.width * 8
        sign = "s" if t.signed else "u"
        end = "" if t.width == 1 else ("b" if t.endian is ir.Endian.BIG else "l")
        return f"Int{bits}{sign}{end or 'b'}"
    return f"BytesInteger({t.width}, signed={t.signed}, swapped={t.endian is ir.Endian.LITTLE})"


# --------------------------------------------------------------------------- construct source


class ConstructEmitter(NodeVisitor):
    """IR -> construct source text.  Strings are kept as bytes on purpose."""

    def node(self, node: ir.Node, ctx: ir.Path, path: ir.Path, indent: int) -> str:
        return self.visit(node, ctx, path, indent)

    def visit_Int(self, node, ctx, path, indent):
        base = fmt_int(node.type)
        if node.derived is not None:
            return f"Rebuild({base}, {self.expr(node.derived, ctx)})"
        return base

    def visit_Bits(self, node, ctx, path, indent):
        parts = []
        used = 0
        for b in node.fields:
            if b.offset > used:
                parts.append(f"Padding({b.offset - used})")
            parts.append(f'"{b.name}" / ' + ("Flag" if b.is_flag else f"BitsInteger({b.width})"))
            used = b.offset + b.width
        if used < node.width * 8:
            parts.append(f"Padding({node.width * 8 - used})")
        return "BitStruct(" + ", ".join(parts) + ")"

    def visit_Const(self, node, ctx, path, indent):
        return f"Const({node.value!r})"

    def visit_Padding(self, node, ctx, path, indent):
        return f"Padding({node.size})"

    def visit_VarInt(self, node, ctx, path, indent):
        return "VarInt"

    def visit_ZigZag(self, node, ctx, path, indent):
        return "ZigZag"

    def visit_Bytes(self, node, ctx, path, indent):
        if node.prefix is not None:
            return f"Prefixed({fmt_int(node.prefix)}, GreedyBytes)"
        if node.prefix_varint:
            return "Prefixed(VarInt, GreedyBytes)"
        if node.size is None:
            return "GreedyBytes"
        return f"Bytes({self.expr(node.size, ctx)})"

    def visit_Extension(self, node, ctx, path, indent):
        args = ["None" if node.size is None else self.expr(node.size, ctx)]
        args += [f"{name}={self.expr(e, ctx)}" for name, e in node.params]
        return f"{naming.camel(node.kind)}({', '.join(args)})"

    def visit_Struct(self, node, ctx, path, indent):
        return self.struct(node, path, indent)

    def visit_Array(self, node, ctx, path, indent):
        element = self.node(node.element, path, path, indent)
        if node.prefix is not None:
            return f"PrefixedArray({fmt_int(node.prefix)}, {element})"
        return f"Array({self.expr(node.count, ctx)}, {element})"

    def visit_Region(self, node, ctx, path, indent):
        inner = self.node(node.inner, ctx, path, indent)
        return f"Prefixed({fmt_int(node.prefix)}, {inner}, includelength={node.include_length})"

    def visit_If(self, node, ctx, path, indent):
        return f"If({self.expr(node.cond, ctx)}, {self.node(node.then, ctx, path, indent)})"

    def visit_Switch(self, node, ctx, path, indent):
        cases = ", ".join(f"{v}: {self.node(c, ctx, path, indent)}" for v, c in node.cases)
        default = "" if node.default is None else f", default={self.node(node.default, ctx, path, indent)}"
        return f"Switch({self.expr(node.key, ctx)}, {{{cases}}}{default})"

    def struct(self, st: ir.Struct, path: ir.Path, indent: int) -> str:
        pad = "    " * (indent + 1)
        lines = [f'{pad}"{f.name}" / {self.node(f.node, path, f.path, indent + 1)},' for f in st.fields]
        return "Struct(\n" + "\n".join(lines) + "\n" + "    " * indent + ")"

    def expr(self, e: ir.Expr, ctx: ir.Path) -> str:
        return _ThisExpr(ctx)(e)


class _ThisExpr(ExprTranslator[str]):
    """IR expression -> construct's ``this`` expression, seen from the struct at ``ctx``."""

    def __init__(self, ctx: ir.Path):
        self.ctx = ctx

    def lit(self, e):
        return repr(e.value)

    def ref(self, e):
        if e.path == ir.DIRECTION_PATH:
            return "this" + "._" * (len(self.ctx) + 1) + "._direction"
        return self._this(e.path)

    def len_of(self, e):
        return f"len_({self._this(e.path)})"

    def _this(self, path: ir.Path) -> str:
        ctx, common = self.ctx, 0
        while common < min(len(ctx), len(path) - 1) and ctx[common] == path[common]:
            common += 1
        return "this" + "._" * (len(ctx) - common) + "".join(f"[{p!r}]" for p in path[common:])

    def binop(self, e):
        op = {"and": "&", "or": "|"}.get(e.op, e.op)
        return f"({self(e.lhs)} {op} {self(e.rhs)})"

    def unop(self, e):
        if e.op == "not":
            return f"({self(e.operand)} == 0)"
        return f"({e.op}{self(e.operand)})"


class PyIntExpr(ExprTranslator[str]):
    """IR expression -> Python integer arithmetic with the codec's checked 64-bit helpers;
    subclasses say how a field's value and length are read."""

    def lit(self, e):
        return repr(e.value)

    def binop(self, e):
        lhs, rhs = self(e.lhs), self(e.rhs)
        if e.op in COMPARISONS:
            return f"int({lhs} {e.op} {rhs})"
        if e.op in LOGICAL:
            return f"int(bool({lhs}) {e.op} bool({rhs}))"
        if e.op in BITWISE:
            return f"({lhs} {e.op} {rhs})"
        return f"_op_{_name(e.op)}({lhs}, {rhs})"

    def unop(self, e):
        inner = self(e.operand)
        return {"not": f"int(not {inner})", "~": f"(~{inner})", "-": f"_i64(-{inner})"}[e.op]


class _WalkerExpr(PyIntExpr):
    """In the walker every value framing reads is a local ``v_<path>``."""

    def ref(self, e):
        return f"v_{ident(e.path)}"

    len_of = ref


# --------------------------------------------------------------------------- walker


class Code:
    def __init__(self):
        self.lines: List[str] = []
        self.depth = 1
        self.counter = 0

    def __call__(self, line: str = ""):
        self.lines.append("    " * self.depth + line if line else "")

    def tmp(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def text(self) -> str:
        return "\n".join(self.lines)


class WalkerEmitter(NodeVisitor):
    """IR -> ``_walk(b, n)``: WAIT (-1) or the frame size; raises ProtocolError.

    Rules shared with the C++ backend (see codecgen/backends/README.md):
    before reading k bytes, refuse if they cross the current limit (the
    enclosing Prefixed region, else max_frame_size), then wait if they are not
    in the buffer yet.  Consts are compared on the bytes present.  Size
    arithmetic is signed 64-bit with overflow refused.
    """

    def __init__(self, proto: ir.ProtocolIR):
        self.proto = proto
        self.code = Code()
        self.referenced = facts(proto).decode_refs
        self.early = facts(proto).early_size_checks

    def emit(self) -> str:
        c = self.code
        for path in sorted(self.referenced):
            if path != ir.DIRECTION_PATH:
                c(f"v_{ident(path)} = 0")
        c("c = 0")
        c("lim = MAX_FRAME_SIZE")
        self.struct(self.proto.frame, "lim")
        c("if c == 0:")
        c("    raise ProtocolError('frame: empty frame')")
        c("return c")
        return c.text()

    def need(self, k: str, lim: str, where: str):
        c = self.code
        c(f"if c + {k} > {lim}:")
        c(f"    raise ProtocolError('{where}: needs ' + str(c + {k}) + ' bytes, beyond the limit ' + str({lim}))")
        c(f"if c + {k} > n:")
        c("    return WAIT")

    def struct(self, st: ir.Struct, lim: str):
        for f in st.fields:
            self.field(f.path, f.node, lim)
            for target, gap, size, when in self.early.get(f.path, ()):
                self.early_check(target, gap, size, when, lim)

    def early_check(self, target: ir.Path, gap: int, size: ir.Expr, when: ir.Expr | None, lim: str):
        c = self.code
        where = "frame." + ir.dotted(target)
        c(f"# {where}: its size is known now, {gap} bytes before it")
        if when is not None:
            c(f"if {self.expr(when)}:")
            c.depth += 1
        c(f"size = {self.expr(size)}")
        c("if size < 0:")
        c(f"    raise ProtocolError('{where}: negative length ' + str(size))")
        c(f"if c + {gap} + size > {lim}:")
        c(f"    raise ProtocolError('{where}: needs ' + str(c + {gap} + size) + ' bytes, beyond the limit ' + str({lim}))")
        if when is not None:
            c.depth -= 1

    def field(self, path: ir.Path, node: ir.Node, lim: str):
        c = self.code
        where = "frame." + ir.dotted(path)
        name = ident(path)
        c(f"# {where}: {type(node).__name__}")
        self.visit(node, path, lim, where, name)

    def visit_Int(self, node, path, lim, where, name):
        c = self.code
        t = node.type
        self.need(str(t.width), lim, where)
        if path in self.referenced:
            order = "big" if t.endian is ir.Endian.BIG else "little"
            c(f"v_{name} = int.from_bytes(b[c:c + {t.width}], '{order}', signed={t.signed})")
            if t.width == 8 and not t.signed:
                c(f"if v_{name} > _I64_MAX:")
                c(f"    raise ProtocolError('{where}: value beyond 64-bit signed arithmetic')")
        c(f"c += {t.width}")

    def visit_Bits(self, node, path, lim, where, name):
        c = self.code
        self.need(str(node.width), lim, where)
        wanted = [bf for bf in node.fields if path + (bf.name,) in self.referenced]
        if wanted:
            c(f"bits = int.from_bytes(b[c:c + {node.width}], 'big')")
            for bf in wanted:
                shift = node.width * 8 - bf.offset - bf.width
                c(f"v_{ident(path + (bf.name,))} = (bits >> {shift}) & {(1 << bf.width) - 1}")
        c(f"c += {node.width}")

    def visit_Const(self, node, path, lim, where, name):
        c = self.code
        size = len(node.value)
        c(f"if c + {size} > {lim}:")
        c(f"    raise ProtocolError('{where}: constant crosses the limit')")
        c(f"m = min(n - c, {size})")
        c(f"if b[c:c + m] != {node.value!r}[:m]:")
        c(f"    raise ProtocolError('{where}: expected constant {node.value.hex()}')")
        c(f"if m < {size}:")
        c("    return WAIT")
        c(f"c += {size}")

    def visit_Padding(self, node, path, lim, where, name):
        c = self.code
        self.need(str(node.size), lim, where)
        c(f"c += {node.size}")

    def visit_VarInt(self, node, path, lim, where, name):
        c = self.code
        self.leb128(node.max_bytes, lim, where)
        if path in self.referenced:
            c("if value > _I64_MAX:")
            c(f"    raise ProtocolError('{where}: value beyond 64-bit signed arithmetic')")
            c(f"v_{name} = value")

    def visit_ZigZag(self, node, path, lim, where, name):
        self.leb128(node.max_bytes, lim, where)
        if path in self.referenced:
            self.code(f"v_{name} = (value >> 1) ^ -(value & 1)")

    def leb128(self, max_bytes: int, lim: str, where: str):
        """Unsigned LEB128 of at most ``max_bytes`` bytes into ``value`` (below 2^64)."""
        c = self.code
        c("value = 0")
        c(f"for i in range({max_bytes}):")
        self.code.depth += 1
        self.need("1", lim, where)
        c("byte = b[c]")
        c("c += 1")
        c("value |= (byte & 0x7F) << (7 * i)")
        c("if not byte & 0x80:")
        c("    break")
        self.code.depth -= 1
        c("else:")
        c(f"    raise ProtocolError('{where}: varint longer than {max_bytes} bytes')")
        c("if value >= 1 << 64:")
        c(f"    raise ProtocolError('{where}: varint beyond 64 bits')")

    def visit_Bytes(self, node, path, lim, where, name):
        c = self.code
        size = self.size_of_bytes(node, path, lim, where)
        if size is None:
            c(f"size = {lim} - c")
        self.need("size", lim, where)
        if path in self.referenced:
            c(f"v_{name} = size")
        c("c += size")

    def visit_Extension(self, node, path, lim, where, name):
        c = self.code
        # Framing only skips an extension field; its parser runs on the whole frame.
        if node.size is None:
            c(f"size = {lim} - c")
        else:
            c(f"size = {self.expr(node.size)}")
            c("if size < 0:")
            c(f"    raise ProtocolError('{where}: negative length ' + str(size))")
        self.need("size", lim, where)
        if path in self.referenced:
            c(f"v_{name} = size")
        c("c += size")

    def visit_Struct(self, node, path, lim, where, name):
        self.struct(node, lim)

    def visit_Array(self, node, path, lim, where, name):
        c = self.code
        if node.prefix is not None:
            self.read_int(node.prefix, lim, where, "count")
        else:
            c(f"count = {self.expr(node.count)}")
        c("if count < 0:")
        c(f"    raise ProtocolError('{where}: negative count ' + str(count))")
        c(f"if count > {node.max_count}:")
        c(f"    raise ProtocolError('{where}: count ' + str(count) + ' exceeds {node.max_count}')")
        element_min = max(min_size(node.element), 1)
        c(f"if count * {element_min} > {lim} - c:")
        c(f"    raise ProtocolError('{where}: count ' + str(count) + ' exceeds the bytes available')")
        if path in self.referenced:
            c(f"v_{name} = count")
        loop = self.code.tmp("i")
        c(f"for {loop} in range(count):")
        self.code.depth += 1
        if isinstance(node.element, ir.Struct):
            self.struct(node.element, lim)
        else:
            self.field(path, node.element, lim)
        self.code.depth -= 1

    def visit_Region(self, node, path, lim, where, name):
        c = self.code
        self.read_int(node.prefix, lim, where, "size")
        if node.include_length:
            c(f"size -= {node.prefix.width}")
        c("if size < 0:")
        c(f"    raise ProtocolError('{where}: negative length ' + str(size))")
        # The content is read as it arrives (constants inside are refused early); only the
        # region's end is checked against the enclosing limit now.
        c(f"if c + size > {lim}:")
        c(f"    raise ProtocolError('{where}: needs ' + str(c + size) + ' bytes, beyond the limit ' + str({lim}))")
        inner = self.code.tmp("lim")
        c(f"{inner} = c + size")
        if isinstance(node.inner, ir.Struct):
            self.struct(node.inner, inner)
        else:
            self.field(path, node.inner, inner)
        c(f"if c != {inner}:")
        c(f"    raise ProtocolError('{where}: content ends at ' + str(c) + ', its length says ' + str({inner}))")

    def visit_If(self, node, path, lim, where, name):
        c = self.code
        c(f"if {self.expr(node.cond)}:")
        self.code.depth += 1
        c("pass")
        self.sub(path, node.then, lim)
        self.code.depth -= 1

    def visit_Switch(self, node, path, lim, where, name):
        c = self.code
        key = self.code.tmp("key")
        c(f"{key} = {self.expr(node.key)}")
        first = True
        for value, case in node.cases:
            c(f"{'if' if first else 'elif'} {key} == {value}:")
            first = False
            self.code.depth += 1
            c("pass")
            self.sub(path, case, lim)
            self.code.depth -= 1
        if node.default is not None:
            c("else:" if not first else "if True:")
            self.code.depth += 1
            c("pass")
            self.sub(path, node.default, lim)
            self.code.depth -= 1

    def sub(self, path, node, lim):
        if isinstance(node, ir.Struct):
            self.struct(node, lim)
        else:
            self.field(path, node, lim)

    def read_int(self, t: ir.IntType, lim: str, where: str, var: str):
        c = self.code
        self.need(str(t.width), lim, where)
        order = "big" if t.endian is ir.Endian.BIG else "little"
        c(f"{var} = int.from_bytes(b[c:c + {t.width}], '{order}', signed={t.signed})")
        c(f"c += {t.width}")

    def size_of_bytes(self, node: ir.Bytes, path, lim, where) -> Optional[str]:
        c = self.code
        if node.prefix is not None:
            self.read_int(node.prefix, lim, where, "size")
        elif node.prefix_varint:
            self.field(path + ("<length>",), ir.VarInt(), lim)
            c("size = value")
        elif node.size is not None:
            c(f"size = {self.expr(node.size)}")
        else:
            return None
        c("if size < 0:")
        c(f"    raise ProtocolError('{where}: negative length ' + str(size))")
        return "size"

    def expr(self, e: ir.Expr) -> str:
        return _WalkerExpr()(e)


def _name(op: str) -> str:
    return {"+": "add", "-": "sub", "*": "mul", "//": "floordiv", "%": "mod", "<<": "shl", ">>": "shr"}[op]


# --------------------------------------------------------------------------- roles


def access(path: ir.Path) -> str:
    return "c" + "".join(f"[{p!r}]" for p in path)


class RolesEmitter:
    """Role values read from a parsed container ``c`` (absent fields -> None)."""

    def __init__(self, proto: ir.ProtocolIR):
        self.proto = proto
        self.direct = facts(proto).unconditional
        self.leaves = {}
        for f in ir.iter_fields(proto.frame):
            self.leaves[f.path] = f.node
            if isinstance(f.node, ir.Bits):
                for b in f.node.fields:
                    self.leaves[f.path + (b.name,)] = b

    def small_int(self, path: ir.Path) -> bool:
        """An integer that always fits signed 64 bits (so no range check is needed)."""
        node = self.leaves.get(path)
        if path == ir.DIRECTION_PATH or isinstance(node, (ir.BitField, ir.ZigZag)):
            return True
        return isinstance(node, ir.Int) and (node.type.width < 8 or node.type.signed)

    def get(self, path: ir.Path, default: str) -> str:
        """Python text reading ``path`` from ``c``: direct when every frame has it."""
        if path in self.direct:
            return access(path)
        return f"_get(c, {path!r}, {default})"

    def value_expr(self, e: ir.Expr) -> str:
        return _RolesExpr(self)(e)


class _RolesExpr(PyIntExpr):
    """Role expressions read the parsed container ``c`` (absent fields are None)."""

    def __init__(self, roles: RolesEmitter):
        self.roles = roles

    def ref(self, e):
        if e.path in self.roles.direct and self.roles.small_int(e.path):
            return f"int({access(e.path)})"
        return f"_v(c, {e.path!r})"

    def len_of(self, e):
        return f"len(_get(c, {e.path!r}, b''))"


# --------------------------------------------------------------------------- reply containers


class FreshEmitter(NodeVisitor):
    """IR -> code that builds a container for a reply frame from ``vals``.

    Leaves take ``vals[path]`` or their default (0, b"", []); If and Switch are
    decided on the values set so far; derived fields are left to construct.
    """

    def __init__(self, proto: ir.ProtocolIR):
        self.proto = proto
        self.roles = RolesEmitter(proto)
        self.code = Code()

    def emit_fresh(self) -> str:
        c = self.code
        c("c = {}")
        self.struct(self.proto.frame, "c")
        c("return c")
        return c.text()

    def emit_element(self, array: ir.Path) -> str:
        node = self.proto.field(array).node
        c = self.code
        c("c = {}")
        self.struct(node.element, "c", element=True)
        c("return Container(c)")
        return c.text()

    def struct(self, st: ir.Struct, holder: str, element=False):
        for f in st.fields:
            self.leaf(f.path, f.name, f.node, holder, element)

    def default(self, node) -> str:
        if isinstance(node, ir.Bytes):
            return "b''"
        if isinstance(node, ir.Array):
            return "[]"
        return "0"

    def leaf(self, path, name, node, holder, element):
        c = self.code
        if holder == "c" and not element and path == self.proto.frame.fields[0].path:
            c("c['@direction'] = direction  # local replies are responses (1)")
        slot = f"{holder}[{name!r}]"
        get = "None" if element else f"vals.get({path!r}, {self.default(node)})"
        self.visit(node, path, name, holder, element, slot, get)

    def visit_Const(self, node, path, name, holder, element, slot, get):
        pass  # built by construct

    visit_Padding = visit_Const

    def visit_Extension(self, node, path, name, holder, element, slot, get):
        c = self.code
        c(f"{slot} = {naming.camel(node.kind)}.raw(vals.get({path!r}, b''))")

    def visit_Int(self, node, path, name, holder, element, slot, get):
        c = self.code
        c(f"{slot} = {'0' if node.derived is not None or element else get}")

    def visit_VarInt(self, node, path, name, holder, element, slot, get):
        c = self.code
        c(f"{slot} = {self.default(node) if element else get}")

    visit_Bytes = visit_ZigZag = visit_VarInt

    visit_Array = visit_VarInt

    def visit_Bits(self, node, path, name, holder, element, slot, get):
        c = self.code
        parts = ", ".join(
            f"{b.name!r}: " + ("0" if element else f"vals.get({path + (b.name,)!r}, 0)") for b in node.fields)
        c(f"{slot} = {{{parts}}}")

    def visit_Struct(self, node, path, name, holder, element, slot, get):
        c = self.code
        inner = self.code.tmp("s")
        c(f"{inner} = {slot} = {{}}")
        self.struct(node, inner, element)

    def visit_Region(self, node, path, name, holder, element, slot, get):
        self.leaf(path, name, node.inner, holder, element)

    def visit_If(self, node, path, name, holder, element, slot, get):
        c = self.code
        c(f"if {self.roles.value_expr(node.cond)}:")
        self.code.depth += 1
        self.leaf(path, name, node.then, holder, element)
        self.code.depth -= 1
        c("else:")
        c(f"    {slot} = None")

    def visit_Switch(self, node, path, name, holder, element, slot, get):
        c = self.code
        key = self.code.tmp("key")
        c(f"{key} = {self.roles.value_expr(node.key)}")
        first = True
        for value, case in node.cases:
            c(f"{'if' if first else 'elif'} {key} == {value}:")
            first = False
            self.code.depth += 1
            c(f"{slot} = None")
            self.leaf(path, name, case, holder, element)
            self.code.depth -= 1
        c("else:" if not first else "if True:")
        self.code.depth += 1
        c(f"{slot} = None")
        if node.default is not None:
            self.leaf(path, name, node.default, holder, element)
        self.code.depth -= 1
