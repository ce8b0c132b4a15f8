"""IR -> the Lua pieces of a Wireshark dissector: field declarations, the frame walker, roles.

``WalkerEmitter`` is a visitor with one ``visit_<Node>`` method per IR wire node. The Lua it
writes, ``walk(tvb, b, n, t, v, r, h)``, follows the framing rules every engine shares
(codecgen/backends/README.md): before reading k bytes, refuse if they cross the current limit
(the enclosing region, else max_frame_size), then ask for the missing bytes; constants are
compared on the bytes present; sizes are checked as soon as they are readable
(``analysis.early_size_checks``). It returns the frame size, ``-missing`` (wait), or
``nil, reason`` (the codec refuses). With a tree ``t`` it also adds every field.

Numbers are Lua 5.2 doubles: sizes, counts and conditions are exact (they are bounded by
max_frame_size); 64-bit values shown or used as request ids are read as UInt64 from the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from codecgen import ir
from codecgen.ir.expr import COMPARISONS, ExprTranslator
from codecgen.ir.facts import facts, min_size
from codecgen.ir.walk import NodeVisitor

UINT_TYPES = {1: "uint8", 2: "uint16", 3: "uint24", 4: "uint32", 8: "uint64"}
INT_TYPES = {1: "int8", 2: "int16", 3: "int24", 4: "int32", 8: "int64"}


def lua_str(data) -> str:
    """A Lua string literal for text or bytes (decimal escapes: valid in every Lua)."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    out = []
    for byte in raw:
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def key(path: ir.Path) -> str:
    return lua_str(ir.dotted(path))


@dataclass
class FieldDecl:
    """One ``ProtoField``: ``abbr`` is appended to the protocol's filter name and a dot."""

    abbr: str
    label: str
    kind: str  # uint8..uint64, int8..int64, bool, bytes, string, none, framenum, relative_time
    base: str = "nil"
    values: Optional[tuple] = None  # ((value, name), ...)
    mask: Optional[int] = None
    bits: Optional[int] = None  # bool: width of the parent in bits
    frametype: Optional[str] = None
    index: int = 0

    def lua_args(self) -> str:
        """The arguments of ``ProtoField.<kind>`` after the abbreviation."""
        args = [lua_str(self.label)]
        if self.kind == "framenum":
            args += ["base.NONE", f"frametype.{self.frametype}"]
        elif self.kind == "bool":
            args += [str(self.bits), "nil", str(self.mask)]
        elif self.kind.startswith(("uint", "int")):
            values = "nil"
            if self.values:
                values = "{" + ", ".join(f"[{v}] = {lua_str(n)}" for v, n in self.values) + "}"
            args += [self.base, values] + ([str(self.mask)] if self.mask is not None else [])
        return ", ".join(args)


@dataclass
class Fields:
    """The field table: unique abbreviations, declared once, addressed by index in Lua."""

    decls: list = field(default_factory=list)
    taken: set = field(default_factory=set)

    def add(self, abbr: str, label: str, kind: str, **kw) -> int:
        while abbr in self.taken:
            abbr += "_"
        self.taken.add(abbr)
        decl = FieldDecl(abbr, label, kind, index=len(self.decls) + 1, **kw)
        self.decls.append(decl)
        return decl.index


def int_kind(t: ir.IntType) -> str:
    table = INT_TYPES if t.signed else UINT_TYPES
    return table.get(t.width, "bytes")


def int_read(t: ir.IntType) -> str:
    """Lua method call reading an integer from a TvbRange, as a number."""
    le = "le_" if t.endian is ir.Endian.LITTLE and t.width > 1 else ""
    if t.width == 8:
        return f":{le}{'int64' if t.signed else 'uint64'}():tonumber()"
    if t.width in (1, 2, 3, 4):
        return f":{le}{'int' if t.signed else 'uint'}()"
    raise ValueError(t)


class Code:
    def __init__(self, depth: int = 1):
        self.lines: list = []
        self.depth = depth
        self.counter = 0

    def __call__(self, line: str) -> None:
        self.lines.append("  " * self.depth + line)

    def tmp(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def text(self) -> str:
        return "\n".join(self.lines)


class Exprs(ExprTranslator[str]):
    """IR expressions as Lua numbers over the value table ``v`` (absent fields read 0)."""

    def lit(self, e):
        return str(int(e.value))

    def ref(self, e):
        if e.path == ir.DIRECTION_PATH:
            return "d"
        return f"(v[{key(e.path)}] or 0)"

    len_of = ref

    def binop(self, e):
        a, b = self(e.lhs), self(e.rhs)
        op = e.op
        if op in ("+", "-", "*"):
            return f"({a} {op} {b})"
        if op == "//":
            return f"math.floor({a} / {b})"
        if op == "%":
            return f"({a} % {b})"
        if op in ("&", "|", "^"):
            fn = {"&": "band", "|": "bor", "^": "bxor"}[op]
            return f"bit32.{fn}({a}, {b})"
        if op == "<<":
            return f"({a} * 2 ^ {b})"
        if op == ">>":
            return f"math.floor({a} / 2 ^ {b})"
        if op in COMPARISONS:
            return f"B({a} {'~=' if op == '!=' else op} {b})"
        return f"B({a} ~= 0 {op} {b} ~= 0)"

    def unop(self, e):
        a = self(e.operand)
        return {"not": f"B({a} == 0)", "-": f"(-{a})", "~": f"(-{a} - 1)"}[e.op]


class WalkerEmitter(NodeVisitor):
    """The frame walker, one ``visit_<Node>`` per IR wire node (see the module doc)."""

    def __init__(self, proto: ir.ProtocolIR, fields: Fields, ranged: set):
        self.proto = proto
        self.fields = fields
        self.ranged = ranged  # paths whose byte range the roles read
        self.code = Code()
        self.expr = Exprs()
        self.early = facts(proto).early_size_checks
        self.referenced = facts(proto).decode_refs
        self.header_map = proto.roles.header_map

    def emit(self) -> str:
        c = self.code
        c("local c = 0")
        c(f"local lim = {self.proto.max_frame_size}")
        self.struct(self.proto.frame, "lim", "t")
        c("if c == 0 then return nil, \"frame: empty frame\" end")
        c("return c")
        return c.text()

    # ------------------------------------------------------------------ helpers

    def need(self, k: str, lim: str, where: str) -> None:
        c = self.code
        c(f"if c + {k} > {lim} then return nil, \"{where}: needs \" .. (c + {k}) .. "
          f"\" bytes, beyond the limit \" .. {lim} end")
        c(f"if c + {k} > n then return -(c + {k} - n) end")

    def add(self, tree: str, index: int, size: str, le: bool = False, value: str = "", at: str = "") -> None:
        """Add field ``index`` over the next ``size`` bytes (or the TvbRange ``at``) to ``tree``."""
        method = "add_le" if le else "add"
        extra = f", {value}" if value else ""
        self.code(f"if {tree} then {tree}:{method}(F[{index}], {at or f'tvb(b + c, {size})'}{extra}) end")

    def sub(self, tree: str, label: str) -> str:
        """Open a text subtree (its length is set by ``close``); returns its Lua name."""
        name = self.code.tmp("t")
        self.code(f"local {name} = {tree} and {tree}:add(tvb(b + c, 0), {lua_str(label)})")
        self.code(f"local {name}_at = c")
        return name

    def close(self, name: str) -> None:
        self.code(f"if {name} then {name}:set_len(c - {name}_at) end")

    def block(self):
        code = self

        class _Block:
            def __enter__(self_inner):
                code.code("do")
                code.code.depth += 1

            def __exit__(self_inner, *exc):
                code.code.depth -= 1
                code.code("end")

        return _Block()

    def struct(self, st: ir.Struct, lim: str, tree: str) -> None:
        for f in st.fields:
            self.field(f, f.node, lim, tree)
            for target, gap, size, when in self.early.get(f.path, ()):
                self.early_check(target, gap, size, when, lim)

    def early_check(self, target, gap, size, when, lim) -> None:
        c = self.code
        where = "frame." + ir.dotted(target)
        c(f"-- {where}: its size is known now, {gap} bytes before it")
        cond = "true" if when is None else f"{self.expr(when)} ~= 0"
        c(f"if {cond} then")
        c.depth += 1
        c(f"local size = {self.expr(size)}")
        c(f"if size < 0 then return nil, \"{where}: negative length \" .. size end")
        c(f"if c + {gap} + size > {lim} then return nil, \"{where}: needs \" .. (c + {gap} + size) .. "
          f"\" bytes, beyond the limit \" .. {lim} end")
        c.depth -= 1
        c("end")

    def field(self, f: ir.Field, node: ir.Node, lim: str, tree: str) -> None:
        self.code(f"-- frame.{ir.dotted(f.path)}: {type(node).__name__}")
        self.visit(node, f, lim, tree)

    def branch(self, f: ir.Field, node: ir.Node, lim: str, tree: str) -> None:
        if isinstance(node, ir.Struct):
            self.struct(node, lim, tree)
        else:
            self.field(f, node, lim, tree)

    def where(self, f: ir.Field) -> str:
        return "frame." + ir.dotted(f.path)

    def read_int(self, t: ir.IntType, lim: str, where: str, var: str) -> str:
        """Read an integer into the Lua local ``var``; returns the local holding its TvbRange."""
        self.need(str(t.width), lim, where)
        self.code(f"local {var}_at = tvb(b + c, {t.width})")
        self.code(f"local {var} = {var}_at{int_read(t)}")
        return f"{var}_at"

    # ------------------------------------------------------------------ visitors

    def visit_Int(self, node: ir.Int, f: ir.Field, lim: str, tree: str) -> None:
        with self.block():
            self.integer(f, node, lim, tree)

    def integer(self, f: ir.Field, node: ir.Int, lim: str, tree: str) -> None:
        t, c = node.type, self.code
        where = self.where(f)
        self.need(str(t.width), lim, where)
        names = tuple((value, name) for name, value in node.enum) or None
        kind = int_kind(t)
        index = self.fields.add(ir.dotted(f.path), f.name, kind, base="base.DEC" if not node.flags else "base.HEX",
                                values=names)
        at = f"tvb(b + c, {t.width})"
        if t.width in (1, 2, 3, 4, 8):
            at = c.tmp("x")  # one TvbRange for the value and the tree item
            c(f"local {at} = tvb(b + c, {t.width})")
            c(f"v[{key(f.path)}] = {at}{int_read(t)}")
        if t.width == 8 and not t.signed and f.path in self.referenced:
            c(f"if v[{key(f.path)}] > 9223372036854775807 then return nil, "
              f"\"{where}: value beyond 64-bit signed arithmetic\" end")
        if f.path in self.ranged:
            c(f"r[{key(f.path)}] = b + c")
        le = t.endian is ir.Endian.LITTLE
        if node.flags and t.width <= 4:
            item = c.tmp("g")
            method = "add_le" if le else "add"
            c(f"local {item} = {tree} and {tree}:{method}(F[{index}], {at})")
            for name, mask in node.flags:
                bit = self.fields.add(ir.dotted(f.path + (name,)), name, "bool", bits=t.width * 8, mask=mask)
                c(f"if {item} then {item}:{method}(F[{bit}], {at}) end")
        else:
            method = "add_le" if le else "add"
            c(f"if {tree} then {tree}:{method}(F[{index}], {at}) end")
        c(f"c = c + {t.width}")

    def visit_Bits(self, node: ir.Bits, f: ir.Field, lim: str, tree: str) -> None:
        with self.block():
            self.bits(f, node, lim, tree)

    def bits(self, f: ir.Field, node: ir.Bits, lim: str, tree: str) -> None:
        c, w = self.code, node.width
        self.need(str(w), lim, self.where(f))
        masked = w <= 4
        group = self.fields.add(ir.dotted(f.path), f.name, UINT_TYPES.get(w, "bytes") if masked else "bytes",
                                base="base.HEX" if masked else "nil")
        c("local bits = 0")
        c(f"for i = 0, {w - 1} do bits = bits * 256 + tvb(b + c + i, 1):uint() end")
        item = c.tmp("g")
        c(f"local {item} = {tree} and {tree}:add(F[{group}], tvb(b + c, {w}))")
        for bf in node.fields:
            shift = w * 8 - bf.offset - bf.width
            path = f.path + (bf.name,)
            c(f"v[{key(path)}] = math.floor(bits / {1 << shift}) % {1 << bf.width}")
            mask = ((1 << bf.width) - 1) << shift
            names = tuple((value, name) for name, value in bf.enum) or None
            if not masked:
                kind = "uint64"
                idx = self.fields.add(ir.dotted(path), bf.name, kind, base="base.DEC", values=names)
                c(f"if {item} then {item}:add(F[{idx}], tvb(b + c, {w}), UInt64(v[{key(path)}])) end")
            elif bf.is_flag:
                idx = self.fields.add(ir.dotted(path), bf.name, "bool", bits=w * 8, mask=mask)
                c(f"if {item} then {item}:add(F[{idx}], tvb(b + c, {w})) end")
            else:
                idx = self.fields.add(ir.dotted(path), bf.name, UINT_TYPES[w], base="base.DEC",
                                      values=names, mask=mask)
                c(f"if {item} then {item}:add(F[{idx}], tvb(b + c, {w})) end")
        c(f"c = c + {w}")

    def visit_Const(self, node: ir.Const, f: ir.Field, lim: str, tree: str) -> None:
        with self.block():
            self.const(f, node, lim, tree)

    def const(self, f: ir.Field, node: ir.Const, lim: str, tree: str) -> None:
        c, size = self.code, len(node.value)
        where = self.where(f)
        index = self.fields.add(ir.dotted(f.path), f.name, "bytes")
        c(f"if c + {size} > {lim} then return nil, \"{where}: constant crosses the limit\" end")
        c(f"local m = math.min(n - c, {size})")
        c(f"if m > 0 and tvb:raw(b + c, m) ~= string.sub({lua_str(node.value)}, 1, m) then "
          f"return nil, \"{where}: expected constant {node.value.hex()}\" end")
        c(f"if m < {size} then return -({size} - m) end")
        c(f"v[{key(f.path)}] = {int.from_bytes(node.value, 'big') if size <= 6 else 0}")
        if f.path in self.ranged:
            c(f"r[{key(f.path)}] = b + c")
        self.add(tree, index, str(size))
        c(f"c = c + {size}")

    def visit_Padding(self, node: ir.Padding, f: ir.Field, lim: str, tree: str) -> None:
        self.need(str(node.size), lim, self.where(f))
        self.code(f"c = c + {node.size}")

    def varint(self, max_bytes: int, lim: str, where: str) -> None:
        """Reads an unsigned LEB128 into ``value``; ``at`` is where it starts."""
        c = self.code
        c("local value, at, shift = 0, c, 1")
        c(f"for i = 1, {max_bytes + 1} do")
        c.depth += 1
        c(f"if i > {max_bytes} then return nil, \"{where}: varint longer than {max_bytes} bytes\" end")
        self.need("1", lim, where)
        c("local byte = tvb(b + c, 1):uint()")
        c("c = c + 1")
        c("value = value + (byte % 128) * shift")
        c("shift = shift * 128")
        c("if byte < 128 then break end")
        c.depth -= 1
        c("end")
        c(f"if value >= 18446744073709551616 then return nil, \"{where}: varint beyond 64 bits\" end")

    def visit_VarInt(self, node: ir.VarInt, f: ir.Field, lim: str, tree: str) -> None:
        where = self.where(f)
        with self.block():
            self.varint(node.max_bytes, lim, where)
            index = self.fields.add(ir.dotted(f.path), f.name, "uint64", base="base.DEC")
            self.code(f"v[{key(f.path)}] = value")
            self.code(f"if {tree} then {tree}:add(F[{index}], tvb(b + at, c - at), UInt64(value)) end")

    def visit_ZigZag(self, node: ir.ZigZag, f: ir.Field, lim: str, tree: str) -> None:
        where = self.where(f)
        with self.block():
            self.varint(node.max_bytes, lim, where)
            self.code("if value % 2 == 0 then value = value / 2 else value = -(value + 1) / 2 end")
            index = self.fields.add(ir.dotted(f.path), f.name, "int64", base="base.DEC")
            self.code(f"v[{key(f.path)}] = value")
            self.code(f"if {tree} then {tree}:add(F[{index}], tvb(b + at, c - at), Int64(value)) end")

    def visit_Bytes(self, node: ir.Bytes, f: ir.Field, lim: str, tree: str) -> None:
        c, where = self.code, self.where(f)
        with self.block():
            if node.prefix is not None:
                at = self.read_int(node.prefix, lim, where, "size")
                idx = self.fields.add(ir.dotted(f.path) + ".length", f.name + " length", int_kind(node.prefix),
                                      base="base.DEC")
                self.add(tree, idx, str(node.prefix.width), le=node.prefix.endian is ir.Endian.LITTLE, at=at)
                c(f"c = c + {node.prefix.width}")
            elif node.prefix_varint:
                self.varint(10, lim, where)
                c("local size = value")
                idx = self.fields.add(ir.dotted(f.path) + ".length", f.name + " length", "uint64", base="base.DEC")
                c(f"if {tree} then {tree}:add(F[{idx}], tvb(b + at, c - at), UInt64(value)) end")
            elif node.size is not None:
                c(f"local size = {self.expr(node.size)}")
            else:
                c(f"local size = {lim} - c")
            c(f"if size < 0 then return nil, \"{where}: negative length \" .. size end")
            self.need("size", lim, where)
            c(f"v[{key(f.path)}] = size")
            if f.path in self.ranged:
                c(f"r[{key(f.path)}] = b + c")
            kind = "string" if node.encoding else "bytes"
            index = self.fields.add(ir.dotted(f.path), f.name, kind)
            c(f"if {tree} and size > 0 then {tree}:add(F[{index}], tvb(b + c, size)) end")
            c("c = c + size")

    def visit_Extension(self, node: ir.Extension, f: ir.Field, lim: str, tree: str) -> None:
        c, where = self.code, self.where(f)
        with self.block():
            if node.size is None:
                c(f"local size = {lim} - c")
            else:
                c(f"local size = {self.expr(node.size)}")
                c(f"if size < 0 then return nil, \"{where}: negative length \" .. size end")
            self.need("size", lim, where)
            c(f"v[{key(f.path)}] = size")
            index = self.fields.add(ir.dotted(f.path), f.name, "bytes")
            note = (f" [extension {node.kind}: bytes only; its values are not dissected here "
                    f"(codecgen decode shows them)]")
            c(f"if {tree} and size > 0 then {tree}:add(F[{index}], tvb(b + c, size)):append_text({lua_str(note)}) end")
            c("c = c + size")

    def visit_Struct(self, node: ir.Struct, f: ir.Field, lim: str, tree: str) -> None:
        with self.block():
            sub = self.sub(tree, f.name)
            self.struct(node, lim, sub)
            self.close(sub)

    def visit_Array(self, node: ir.Array, f: ir.Field, lim: str, tree: str) -> None:
        c, where = self.code, self.where(f)
        with self.block():
            if node.prefix is not None:
                self.read_int(node.prefix, lim, where, "count")
                c(f"c = c + {node.prefix.width}")
            else:
                c(f"local count = {self.expr(node.count)}")
            c(f"if count < 0 then return nil, \"{where}: negative count \" .. count end")
            c(f"if count > {node.max_count} then return nil, \"{where}: count \" .. count .. "
              f"\" exceeds {node.max_count}\" end")
            element_min = max(min_size(node.element), 1)
            c(f"if count * {element_min} > {lim} - c then return nil, \"{where}: count \" .. count .. "
              f"\" exceeds the bytes available\" end")
            c(f"v[{key(f.path)}] = count")
            sub = self.sub(tree, f.name)
            c(f"if {sub} then {sub}:append_text(\" (\" .. count .. \" elements)\") end")
            loop = c.tmp("i")
            c(f"for {loop} = 1, count do")
            c.depth += 1
            if isinstance(node.element, ir.Struct):
                element = self.sub(sub, "")
                c(f"if {element} then {element}:append_text(\"[\" .. ({loop} - 1) .. \"]\") end")
                self.struct(node.element, lim, element)
                self.close(element)
            else:
                self.field(f, node.element, lim, sub)
            hm = self.header_map
            if hm is not None and hm.array == f.path and hm.key_field:
                k, val = key(f.path + (hm.key_field,)), key(f.path + (hm.value_field,))
                c(f"if h then h[#h + 1] = {{r[{k}], v[{k}], r[{val}], v[{val}]}} end")
            c.depth -= 1
            c("end")
            self.close(sub)

    def visit_Region(self, node: ir.Region, f: ir.Field, lim: str, tree: str) -> None:
        c, where = self.code, self.where(f)
        with self.block():
            at = self.read_int(node.prefix, lim, where, "size")
            idx = self.fields.add(ir.dotted(f.path) + ".length", f.name + " length", int_kind(node.prefix),
                                  base="base.DEC")
            self.add(tree, idx, str(node.prefix.width), le=node.prefix.endian is ir.Endian.LITTLE, at=at)
            c(f"c = c + {node.prefix.width}")
            if node.include_length:
                c(f"size = size - {node.prefix.width}")
            c(f"if size < 0 then return nil, \"{where}: negative length \" .. size end")
            c(f"if c + size > {lim} then return nil, \"{where}: needs \" .. (c + size) .. "
              f"\" bytes, beyond the limit \" .. {lim} end")
            inner = c.tmp("lim")
            c(f"local {inner} = c + size")
            if isinstance(node.inner, ir.Struct):
                sub = self.sub(tree, f.name)
                self.struct(node.inner, inner, sub)
                self.close(sub)
            else:
                self.field(f, node.inner, inner, tree)
            c(f"if c ~= {inner} then return nil, \"{where}: content ends at \" .. c .. "
              f"\", its length says \" .. {inner} end")

    def visit_If(self, node: ir.If, f: ir.Field, lim: str, tree: str) -> None:
        c = self.code
        c(f"if {self.expr(node.cond)} ~= 0 then")
        c.depth += 1
        self.branch(f, node.then, lim, tree)
        c.depth -= 1
        c("end")

    def visit_Switch(self, node: ir.Switch, f: ir.Field, lim: str, tree: str) -> None:
        c = self.code
        with self.block():
            c(f"local sw = {self.expr(node.key)}")
            first = True
            for value, case in node.cases:
                c(f"{'if' if first else 'elseif'} sw == {int(value)} then")
                first = False
                c.depth += 1
                self.branch(f, case, lim, tree)
                c.depth -= 1
            if node.default is not None:
                c("else" if not first else "if true then")
                c.depth += 1
                self.branch(f, node.default, lim, tree)
                c.depth -= 1
                first = False
            if not first:
                c("end")
