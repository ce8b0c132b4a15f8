"""C++ backend: IR -> the statements of the generated MetaProtocol codec.

The templates (``*.j2`` beside this file) hold the shape of every file; this
module produces the pieces that depend on the wire tree: the ``Frame`` struct
members, ``parseFrame`` (framing with early refusal, the twin of the Python
walker), ``writeFrame`` (canonical re-serialization, the twin of construct's
build), and the role, mutation and reply statements.

Naming: a field at path ``("header", "service")`` is the member
``header_service``; an array element's fields are members of
``<Array>Entry``; each If/Switch records the branch it took in ``<path>_branch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from codecgen import ir, naming
from codecgen.ir.expr import COMPARISONS, LOGICAL, ExprTranslator
from codecgen.ir.facts import facts, min_size
from codecgen.ir.walk import NodeVisitor, children

Accessor = Callable[[ir.Path], str]


# Members every Frame has (codec.cc.j2); a field with one of these names gets a suffix, and so
# does one starting with "ext_" (extension members are ext_<field>...).
RESERVED_MEMBERS = ("body", "body_offset", "body_length", "frame_size", "direction")


def member(path: ir.Path) -> str:
    if path == ir.DIRECTION_PATH:
        return "direction"
    name = _joined(path)
    if name in RESERVED_MEMBERS or name.startswith("ext_"):
        return name + "_field"
    return name


def _joined(path: ir.Path) -> str:
    return "_".join(p.lstrip("_") or "x" for p in path)


def camel(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in text.replace("-", "_").split("_") if p)


def const_name(path: ir.Path) -> str:
    """``("magic",)`` -> ``kMagic``: the name of a field's constant bytes."""
    return "k" + camel(member(path))


def ext_namespace(node: ir.Extension) -> str:
    """The C++ namespace of an extension's functions (codecgen/ext/base.py)."""
    return naming.camel(node.kind)


def ext_member(path: ir.Path) -> str:
    """The Frame member holding an extension field's value, e.g. ``ext_body``."""
    return "ext_" + _joined(path)


def int_ctype(width: int, signed: bool) -> str:
    bits = 8 if width == 1 else 16 if width == 2 else 32 if width <= 4 else 64
    return f"{'int' if signed else 'uint'}{bits}_t"


def int_template(t: ir.IntType) -> str:
    """Template arguments for peek/write: ``uint32_t`` or ``uint32_t, 3``."""
    ctype = int_ctype(t.width, t.signed)
    natural = 1 if t.width == 1 else 2 if t.width == 2 else 4 if t.width <= 4 else 8
    return ctype if natural == t.width else f"{ctype}, {t.width}"


def endian_word(t: ir.IntType) -> str:
    return "LE" if t.endian is ir.Endian.LITTLE and t.width > 1 else "BE"


def cpp_string(data: bytes) -> str:
    out = []
    for byte in data:
        ch = chr(byte)
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}\"\"")
    text = "".join(out)
    return f'std::string("{text}", {len(data)})'


class _TypeText(NodeVisitor):
    """A short description of a node, for comments."""

    def visit_Int(self, node):
        t = node.type
        text = f"{'i' if t.signed else 'u'}{t.bits}{'' if t.width == 1 else endian_word(t).lower()}"
        return text + (", derived" if node.derived is not None else "")

    def visit_Bits(self, node):
        return f"{node.width * 8} bits: " + ", ".join(b.name for b in node.fields)

    def visit_Const(self, node):
        return f"constant 0x{node.value.hex()}"

    def visit_Padding(self, node):
        return f"{node.size} padding bytes"

    def visit_VarInt(self, node):
        return "varint" if node.max_bytes == 10 else f"varint of at most {node.max_bytes} bytes"

    def visit_ZigZag(self, node):
        return "zigzag varint"

    def visit_Bytes(self, node):
        if node.prefix is not None:
            return f"bytes with a u{node.prefix.bits} length"
        if node.prefix_varint:
            return "bytes with a varint length"
        return "bytes to the end of the region" if node.size is None else f"bytes[{ir.expr_text(node.size)}]"

    def visit_Array(self, node):
        return f"array with a u{node.prefix.bits} count" if node.prefix else f"array[{ir.expr_text(node.count)}]"

    def visit_Region(self, node):
        return f"region with a u{node.prefix.bits} length"

    def visit_If(self, node):
        return f"present if {ir.expr_text(node.cond)}"

    def visit_Switch(self, node):
        return f"switch on {ir.expr_text(node.key)}"

    def visit_Extension(self, node):
        size = "to the end of the region" if node.size is None else f"[{ir.expr_text(node.size)}]"
        return f"extension {node.kind}, {size}"

    def visit_Struct(self, node):
        return "struct"


type_text = _TypeText().visit


class Lines:
    """Indented C++ statements."""

    def __init__(self, depth: int = 1):
        self.lines: List[str] = []
        self.depth = depth
        self.counter = 0

    def __call__(self, text: str = "") -> None:
        self.lines.append("  " * self.depth + text if text else "")

    def open(self, text: str) -> None:
        self(text)
        self.depth += 1

    def close(self, text: str = "}") -> None:
        self.depth -= 1
        self(text)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def text(self) -> str:
        return "\n".join(self.lines)


# --------------------------------------------------------------------------- expressions


class Expr(ExprTranslator[str]):
    """IR expression -> C++ ``int64_t`` expression with checked arithmetic."""

    _CHECKED = {"+": "checkedAdd", "-": "checkedSub", "*": "checkedMul", "//": "floorDiv",
                "%": "floorMod", "<<": "checkedShl", ">>": "checkedShr"}

    def __init__(self, value: Accessor, length: Accessor):
        self.value = value
        self.length = length

    def lit(self, e):
        return str(e.value) if e.value >= 0 else f"int64_t{{{e.value}}}"

    def ref(self, e):
        return f"static_cast<int64_t>({self.value(e.path)})"

    def len_of(self, e):
        return f"static_cast<int64_t>({self.length(e.path)})"

    def binop(self, e):
        helper = self._CHECKED.get(e.op)
        if helper:
            return f"{helper}({self(e.lhs)}, {self(e.rhs)})"
        if e.op in LOGICAL or e.op in COMPARISONS:
            return f"static_cast<int64_t>({self.cond(e)})"
        return f"({self(e.lhs)} {e.op} {self(e.rhs)})"

    def unop(self, e):
        if e.op == "not":
            return f"static_cast<int64_t>({self.cond(e)})"
        if e.op == "~":
            return f"(~{self(e.operand)})"
        return f"checkedSub(0, {self(e.operand)})"

    def cond(self, e: ir.Expr) -> str:
        """A C++ boolean expression that holds when ``e`` is non-zero."""
        if isinstance(e, ir.BinOp) and e.op in COMPARISONS:
            return f"{self(e.lhs)} {e.op} {self(e.rhs)}"
        if isinstance(e, ir.BinOp) and e.op in LOGICAL:
            op = "&&" if e.op == "and" else "||"
            return f"({self.cond(e.lhs)}) {op} ({self.cond(e.rhs)})"
        if isinstance(e, ir.UnOp) and e.op == "not":
            return f"!({self.cond(e.operand)})"
        return f"{self(e)} != 0"


# --------------------------------------------------------------------------- frame model


@dataclass
class Member:
    ctype: str
    name: str
    comment: str
    init: str = ""


@dataclass
class EntryStruct:
    name: str
    members: List[Member]


class FrameModel(NodeVisitor):
    """Which C++ members the Frame struct (and array entry structs) need."""

    def __init__(self, proto: ir.ProtocolIR):
        self.proto = proto
        self.body = proto.roles.body
        self.members: List[Member] = []
        self.entries: List[EntryStruct] = []
        self.entry_of: Dict[ir.Path, str] = {}  # array path -> entry struct name
        self.array_paths: Dict[ir.Path, ir.Array] = {}
        # field -> the branch chains under which it is on the wire, one per place it is
        # declared (a field may appear in several Switch cases): [[(branch member, index)]]
        self.branches: Dict[ir.Path, List[List[Tuple[str, int]]]] = {}
        self.nodes: Dict[ir.Path, object] = {}
        self.extensions: List[Tuple[ir.Path, ir.Extension]] = []  # in wire order
        self.outputs: Dict[ir.Path, Tuple[ir.Path, ir.ExtOutput]] = {}  # output path -> (field, output)
        self._seen: set = set()
        self._struct(proto.frame, self.members, [], base=None)

    def _add(self, out: List[Member], m: Member):
        if m.name not in self._seen or out is not self.members:
            out.append(m)
        self._seen.add(m.name)

    def _struct(self, st: ir.Struct, out, chain, base):
        for f in st.fields:
            self._field(f.path, f.name, f.node, out, chain, base)

    def _field(self, path, name, node, out, chain, base):
        """``base`` is the array path when ``path`` lives in an array entry."""
        in_entry = base is not None
        self._mark(path, chain)
        self.nodes[path] = node
        mname = member(path[len(base):]) if in_entry else member(path)
        where = ir.dotted(path)
        self.visit(node, path, name, out, chain, base, in_entry, mname, where)

    def visit_Int(self, node, path, name, out, chain, base, in_entry, mname, where):
        self._add(out, Member(int_ctype(node.type.width, node.type.signed), mname, where, "0"))

    def visit_VarInt(self, node, path, name, out, chain, base, in_entry, mname, where):
        self._add(out, Member("uint64_t", mname, where, "0"))

    def visit_ZigZag(self, node, path, name, out, chain, base, in_entry, mname, where):
        self._add(out, Member("int64_t", mname, where, "0"))

    def visit_Bits(self, node, path, name, out, chain, base, in_entry, mname, where):
        for b in node.fields:
            self._mark(path + (b.name,), chain)
            self.nodes[path + (b.name,)] = b
            ctype = "uint8_t" if b.width <= 8 else "uint16_t" if b.width <= 16 else \
                "uint32_t" if b.width <= 32 else "uint64_t"
            bname = member((path + (b.name,))[len(base):]) if in_entry else member(path + (b.name,))
            self._add(out, Member(ctype, bname, f"{where}.{b.name}", "0"))

    def visit_Bytes(self, node, path, name, out, chain, base, in_entry, mname, where):
        if path == self.body and not in_entry:
            pass  # body_offset, body_length and body are members of every Frame
        else:
            self._add(out, Member("std::string", mname, where))

    def visit_Extension(self, node, path, name, out, chain, base, in_entry, mname, where):
        m = ext_member(path)
        self.extensions.append((path, node))
        for o in node.outputs:
            self.outputs[path + (o.name,)] = (path, o)
            self.nodes[path + (o.name,)] = o
            self._mark(path + (o.name,), chain)
        self._add(out, Member(f"{ext_namespace(node)}::Value", m, f"{where}: extension {node.kind}"))
        self._add(out, Member("ExtState", f"{m}_state", f"{where}: parsed, mutated or built here",
                              "ExtState::Built"))
        self._add(out, Member("uint64_t", f"{m}_offset", f"{where}: where it starts in the source", "0"))
        self._add(out, Member("uint64_t", f"{m}_source_length", f"{where}: its size in the source", "0"))
        self._add(out, Member("uint64_t", f"{m}_length", f"{where}: its size when written", "0"))
        self._add(out, Member("std::string", f"{m}_literal", f"{where}: its bytes in a reply built here"))

    def visit_Struct(self, node, path, name, out, chain, base, in_entry, mname, where):
        self._struct(node, out, chain, base)

    def visit_Region(self, node, path, name, out, chain, base, in_entry, mname, where):
        self._field(path, name, node.inner, out, chain, base)

    def visit_Array(self, node, path, name, out, chain, base, in_entry, mname, where):
        entry = camel(member(path)) + "Entry"
        self.entry_of[path] = entry
        self.array_paths[path] = node
        members: List[Member] = []
        if isinstance(node.element, ir.Struct):
            for f in node.element.fields:
                self._field(f.path, f.name, f.node, members, [], base=path)
        else:
            self._field(path + ("value",), "value", node.element, members, [], base=path)
        self.entries.append(EntryStruct(entry, members))
        self._add(out, Member(f"std::vector<{entry}>", mname, where))

    def visit_If(self, node, path, name, out, chain, base, in_entry, mname, where):
        branch = member(path) + "_branch"
        self._add(out, Member("int", branch, f"{where}: branch taken (-1: none)", "-1"))
        cases = children(node)  # If: then; Switch: the cases, then the default
        for index, case in enumerate(cases):
            self._field(path, name, case, out, chain + [(branch, index)], base)
        # A scalar directly under an If/Switch shares its path: it is present only when its
        # branch was taken.  A Struct case's fields have paths of their own.
        scalars = [chain + [(branch, i)] for i, case in enumerate(cases) if not isinstance(case, ir.Struct)]
        self.branches[path] = scalars or [list(chain)]

    visit_Switch = visit_If

    def visit_Const(self, node, path, name, out, chain, base, in_entry, mname, where):
        pass  # carries no value

    visit_Padding = visit_Const

    def value(self, path: ir.Path) -> str:
        """The C++ expression of a top-level field's (or extension output's) value."""
        if path in self.outputs:
            field, output = self.outputs[path]
            return f"frame.{ext_member(field)}.{output.name}"
        return f"frame.{member(path)}"

    def length(self, path: ir.Path) -> str:
        """The C++ expression of ``len_(path)`` outside arrays."""
        if path == self.body and isinstance(self.nodes.get(path), ir.Bytes):
            return "frame.body_length"
        if isinstance(self.nodes.get(path), ir.Extension):
            return f"frame.{ext_member(path)}_length"
        return f"frame.{member(path)}.size()"

    def _mark(self, path: ir.Path, chain) -> None:
        chains = self.branches.setdefault(path, [])
        if list(chain) not in chains:
            chains.append(list(chain))

    def presence(self, path: ir.Path, frame: str = "frame") -> str:
        """A C++ condition that is true when ``path`` was present on the wire ("" = always)."""
        alternatives = []
        for chain in self.branches.get(path, [[]]):
            if not chain:
                return ""
            alternatives.append(" && ".join(f"{frame}.{b} == {i}" for b, i in chain))
        if len(alternatives) == 1:
            return alternatives[0]
        return " || ".join(f"({a})" for a in alternatives)


# --------------------------------------------------------------------------- parse


class ParseEmitter(NodeVisitor):
    """``parseFrame`` statements: the C++ twin of the Python walker."""

    def __init__(self, proto: ir.ProtocolIR, model: FrameModel):
        self.proto = proto
        self.model = model
        self.refs = facts(proto).decode_refs
        self.early = facts(proto).early_size_checks
        self.out = Lines(1)
        self.scope: Dict[ir.Path, str] = {}  # array path -> entry variable in the loop

    def access(self, path: ir.Path) -> str:
        for array, var in self.scope.items():
            if path[: len(array)] == array and len(path) > len(array):
                return f"{var}.{member(path[len(array):])}"
        return self.model.value(path)

    def length(self, path: ir.Path) -> str:
        for array in self.scope:
            if path[: len(array)] == array and len(path) > len(array):
                return f"{self.access(path)}.size()"
        return self.model.length(path)

    @property
    def expr(self) -> Expr:
        return Expr(self.access, self.length)

    def emit(self) -> str:
        o = self.out
        o("uint64_t cursor = 0;")
        self.struct(self.proto.frame, "kMaxFrameSize")
        o("if (cursor == 0) {")
        o(f'  throw EnvoyException("{self.proto.name}: empty frame");')
        o("}")
        o("frame.frame_size = cursor;")
        self.parse_extensions()
        o("return true;")
        return o.text()

    def parse_extensions(self):
        """Extension fields are parsed once the whole frame is present (as the reference does)."""
        o = self.out
        for path, node in self.model.extensions:
            ns, m = ext_namespace(node), ext_member(path)
            present = self.model.presence(path)
            o(f"// {ir.dotted(path)}: extension {node.kind}, parsed now that the whole frame is here.")
            o.open(f"if ({present}) {{" if present else "{")
            o(f"{ns}::Params params;")
            for name, e in node.params:
                o(f"params.{name} = {self.expr(e)};")
            o(f"{ns}::parse(buffer, frame.{m}_offset, frame.{m}_length, params, frame.{m});")
            o.close()

    def need(self, size: str, limit: str, where: str):
        o = self.out
        o(f'if (!need(buffer, cursor, {size}, {limit}, "{where}")) {{')
        o("  return false;")
        o("}")

    def struct(self, st: ir.Struct, limit: str):
        for f in st.fields:
            self.field(f.path, f.node, limit)
            for target, gap, size, when in self.early.get(f.path, ()):
                self.early_check(target, gap, size, when, limit)

    def early_check(self, target: ir.Path, gap: int, size: ir.Expr, when: ir.Expr | None, limit: str):
        """Refuses a size for a later field as soon as its inputs are read."""
        o = self.out
        where = "frame." + ir.dotted(target)
        o(f"// {ir.dotted(target)}: its size is known now, {gap} bytes ahead: refuse it early.")
        check = f'need(buffer, cursor + {gap}, {self.expr(size)}, {limit}, "{where}");'
        if when is None:
            o(check)
            return
        o(f"if ({self.expr(when)}) {{")
        o(f"  {check}")
        o("}")

    def read_int(self, t: ir.IntType, target: str):
        self.out(f"{target} = buffer.peek{endian_word(t)}Int<{int_template(t)}>(cursor);")

    def check_i64(self, path: ir.Path, value: str, where: str):
        self.out(f'checkSigned64({value}, "{where}");')

    def field(self, path: ir.Path, node: ir.Node, limit: str):
        o = self.out
        where = "frame." + ir.dotted(path)
        o(f"// {ir.dotted(path)}: {type_text(node)}")
        self.visit(node, path, limit, where)

    def visit_Int(self, node, path, limit, where):
        o = self.out
        t = node.type
        self.need(str(t.width), limit, where)
        self.read_int(t, self.access(path))
        if path in self.refs and t.width == 8 and not t.signed:
            self.check_i64(path, self.access(path), where)
        o(f"cursor += {t.width};")

    def visit_Bits(self, node, path, limit, where):
        o = self.out
        self.need(str(node.width), limit, where)
        ctype = int_ctype(node.width, False)
        bits = o.fresh("bits")
        tmpl = ctype if node.width in (1, 2, 4, 8) else f"{ctype}, {node.width}"
        o(f"const {ctype} {bits} = buffer.peekBEInt<{tmpl}>(cursor);")
        for b in node.fields:
            shift = node.width * 8 - b.offset - b.width
            target = self.access(path + (b.name,))
            mtype = self.model_member_type(b)
            o(f"{target} = static_cast<{mtype}>(({bits} >> {shift}) & 0x{(1 << b.width) - 1:x});")
        o(f"cursor += {node.width};")

    def visit_Const(self, node, path, limit, where):
        o = self.out
        const = const_name(path)
        data = ", ".join(f"0x{b:02x}" for b in node.value)
        o(f"static constexpr uint8_t {const}[] = {{{data}}};")
        o(f'if (!matchConstant(buffer, cursor, {const}, sizeof({const}), {limit}, "{where}")) {{')
        o("  return false;")
        o("}")
        o(f"cursor += sizeof({const});")

    def visit_Padding(self, node, path, limit, where):
        o = self.out
        self.need(str(node.size), limit, where)
        o(f"cursor += {node.size};")

    def visit_VarInt(self, node, path, limit, where):
        o = self.out
        target = self.access(path)
        o(f'if (!readVarInt(buffer, cursor, {limit}, {node.max_bytes}, "{where}", {target})) {{')
        o("  return false;")
        o("}")
        if path in self.refs:
            self.check_i64(path, target, where)

    def visit_ZigZag(self, node, path, limit, where):
        o = self.out
        raw = o.fresh("raw")
        o(f"uint64_t {raw} = 0;")
        o(f'if (!readVarInt(buffer, cursor, {limit}, {node.max_bytes}, "{where}", {raw})) {{')
        o("  return false;")
        o("}")
        o(f"{self.access(path)} = zigzagDecode({raw});")

    def visit_Bytes(self, node, path, limit, where):
        self.bytes_field(path, node, limit, where)

    def visit_Extension(self, node, path, limit, where):
        o = self.out
        # Framing only skips an extension field; parse_extensions() reads it.
        m = ext_member(path)
        o.open("{")
        size = o.fresh("size")
        value = f"static_cast<int64_t>({limit} - cursor)" if node.size is None else self.expr(node.size)
        o(f"const int64_t {size} = {value};")
        self.need(size, limit, where)
        o(f"frame.{m}_state = ExtState::Parsed;")
        o(f"frame.{m}_offset = cursor;")
        o(f"frame.{m}_source_length = static_cast<uint64_t>({size});")
        o(f"frame.{m}_length = static_cast<uint64_t>({size});")
        o(f"cursor += static_cast<uint64_t>({size});")
        o.close()

    def visit_Struct(self, node, path, limit, where):
        self.struct(node, limit)

    def visit_Region(self, node, path, limit, where):
        o = self.out
        o.open("{")
        self.need(str(node.prefix.width), limit, where)
        size = o.fresh("size")
        o(f"int64_t {size} = buffer.peek{endian_word(node.prefix)}Int<{int_template(node.prefix)}>(cursor);")
        o(f"cursor += {node.prefix.width};")
        if node.include_length:
            o(f"{size} -= {node.prefix.width};")
        o("// The content is read as it arrives (constants inside are refused early); only the")
        o("// region's end is checked against the enclosing limit now.")
        o(f'need(buffer, cursor, {size}, {limit}, "{where}");')
        inner = o.fresh("limit")
        o(f"const uint64_t {inner} = cursor + static_cast<uint64_t>({size});")
        if isinstance(node.inner, ir.Struct):
            self.struct(node.inner, inner)
        else:
            self.field(path, node.inner, inner)
        o(f"if (cursor != {inner}) {{")
        o(f'  throw EnvoyException("{self.proto.name}: {where}: content does not fill its length");')
        o("}")
        o.close()

    def visit_Array(self, node, path, limit, where):
        self.array(path, node, limit, where)

    def visit_If(self, node, path, limit, where):
        o = self.out
        branch = self.access(path) + "_branch"
        o.open(f"if ({self.expr.cond(node.cond)}) {{")
        o(f"{branch} = 0;")
        self.sub(path, node.then, limit)
        o.close()

    def visit_Switch(self, node, path, limit, where):
        o = self.out
        branch = self.access(path) + "_branch"
        key = o.fresh("key")
        o(f"const int64_t {key} = {self.expr(node.key)};")
        keyword = "if"
        for index, (value, case) in enumerate(node.cases):
            o.open(f"{keyword} ({key} == {value}) {{")
            o(f"{branch} = {index};")
            self.sub(path, case, limit)
            o.depth -= 1
            keyword = "} else if"
        if node.default is not None:
            o.open("} else {" if node.cases else "{")
            o(f"{branch} = {len(node.cases)};")
            self.sub(path, node.default, limit)
            o.depth -= 1
        o("}")

    def model_member_type(self, b: ir.BitField) -> str:
        return "uint8_t" if b.width <= 8 else "uint16_t" if b.width <= 16 else \
            "uint32_t" if b.width <= 32 else "uint64_t"

    def sub(self, path, node, limit):
        if isinstance(node, ir.Struct):
            self.struct(node, limit)
        else:
            self.field(path, node, limit)

    def bytes_field(self, path, node: ir.Bytes, limit, where):
        o = self.out
        o.open("{")
        size = o.fresh("size")
        if node.prefix is not None:
            self.need(str(node.prefix.width), limit, where)
            o(f"const int64_t {size} = buffer.peek{endian_word(node.prefix)}Int<{int_template(node.prefix)}>(cursor);")
            o(f"cursor += {node.prefix.width};")
        elif node.prefix_varint:
            raw = o.fresh("length")
            o(f"uint64_t {raw} = 0;")
            o(f'if (!readVarInt(buffer, cursor, {limit}, 10, "{where}", {raw})) {{')
            o("  return false;")
            o("}")
            o(f'const int64_t {size} = checkSigned64({raw}, "{where}");')
        elif node.size is not None:
            o(f"const int64_t {size} = {self.expr(node.size)};")
        else:
            o(f"const int64_t {size} = static_cast<int64_t>({limit} - cursor);")
        self.need(size, limit, where)
        if path == self.model.body and not self.scope:
            o("frame.body_offset = cursor;")
            o(f"frame.body_length = static_cast<uint64_t>({size});")
        else:
            o(f"{self.access(path)} = copyString(buffer, cursor, {size});")
        o(f"cursor += static_cast<uint64_t>({size});")
        o.close()

    def array(self, path, node: ir.Array, limit, where):
        o = self.out
        o.open("{")
        count = o.fresh("count")
        if node.prefix is not None:
            self.need(str(node.prefix.width), limit, where)
            o(f"const int64_t {count} = buffer.peek{endian_word(node.prefix)}Int<{int_template(node.prefix)}>(cursor);")
            o(f"cursor += {node.prefix.width};")
        else:
            o(f"const int64_t {count} = {self.expr(node.count)};")
        element_min = max(min_size(node.element), 1)
        o(f'checkCount({count}, {node.max_count}, {element_min}, {limit} - cursor, "{where}");')
        target = self.access(path)
        o(f"{target}.reserve(static_cast<size_t>({count}));")
        index = o.fresh("i")
        o.open(f"for (int64_t {index} = 0; {index} < {count}; {index}++) {{")
        entry = o.fresh("entry")
        o(f"auto& {entry} = {target}.emplace_back();")
        self.scope[path] = entry
        if isinstance(node.element, ir.Struct):
            self.struct(node.element, limit)
        else:
            self.field(path + ("value",), node.element, limit)
        del self.scope[path]
        o.close()
        o.close()


# --------------------------------------------------------------------------- write


class WriteEmitter(NodeVisitor):
    """``writeFrame`` statements: canonical re-serialization, the twin of construct's build."""

    def __init__(self, proto: ir.ProtocolIR, model: FrameModel):
        self.proto = proto
        self.model = model
        self.out = Lines(1)
        self.scope: Dict[ir.Path, str] = {}

    access = ParseEmitter.access
    length = ParseEmitter.length

    @property
    def expr(self) -> Expr:
        return Expr(self.access, self.length)

    def emit(self) -> str:
        self.struct(self.proto.frame, "out")
        return self.out.text()

    def struct(self, st: ir.Struct, out: str):
        for f in st.fields:
            self.field(f.path, f.node, out)

    def write_int(self, t: ir.IntType, value: str, out: str):
        self.out(f"{out}.write{endian_word(t)}Int<{int_template(t)}>({value});")

    def field(self, path: ir.Path, node: ir.Node, out: str):
        o = self.out
        where = "frame." + ir.dotted(path)
        o(f"// {ir.dotted(path)}: {type_text(node)}")
        self.visit(node, path, out, where)

    def visit_Int(self, node, path, out, where):
        o = self.out
        t = node.type
        target = self.access(path)
        if node.derived is not None:
            o(f'{target} = fitInt<{int_template(t)}>({self.expr(node.derived)}, "{where}");')
        self.write_int(t, target, out)

    def visit_Bits(self, node, path, out, where):
        o = self.out
        ctype = int_ctype(node.width, False)
        parts = []
        for b in node.fields:
            shift = node.width * 8 - b.offset - b.width
            value = f"(static_cast<{ctype}>({self.access(path + (b.name,))}) & 0x{(1 << b.width) - 1:x})"
            parts.append(f"({value} << {shift})" if shift else value)
        tmpl = ctype if node.width in (1, 2, 4, 8) else f"{ctype}, {node.width}"
        joined = " | ".join(parts) if parts else "0"
        o(f"{out}.writeBEInt<{tmpl}>(static_cast<{ctype}>({joined}));")

    def visit_Const(self, node, path, out, where):
        o = self.out
        const = const_name(path)
        data = ", ".join(f"0x{b:02x}" for b in node.value)
        o(f"static constexpr uint8_t {const}[] = {{{data}}};")
        o(f"{out}.add({const}, sizeof({const}));")

    def visit_Padding(self, node, path, out, where):
        o = self.out
        o(f"writeZeros({out}, {node.size});")

    def visit_VarInt(self, node, path, out, where):
        o = self.out
        o(f"writeVarInt({out}, {self.access(path)});")

    def visit_ZigZag(self, node, path, out, where):
        self.out(f"writeVarInt({out}, zigzagEncode({self.access(path)}));")

    def visit_Bytes(self, node, path, out, where):
        self.bytes_field(path, node, out, where)

    def visit_Extension(self, node, path, out, where):
        self.extension(path, node, out, where)

    def visit_Struct(self, node, path, out, where):
        self.struct(node, out)

    def visit_Region(self, node, path, out, where):
        o = self.out
        o.open("{")
        region = o.fresh("region")
        o(f"Buffer::OwnedImpl {region};")
        if isinstance(node.inner, ir.Struct):
            self.struct(node.inner, region)
        else:
            self.field(path, node.inner, region)
        extra = f" + {node.prefix.width}" if node.include_length else ""
        value = f"static_cast<int64_t>({region}.length(){extra})"
        self.write_int(node.prefix, f'fitInt<{int_template(node.prefix)}>({value}, "{where}")', out)
        o(f"{out}.move({region});")
        o.close()

    def visit_Array(self, node, path, out, where):
        self.array(path, node, out, where)

    def visit_If(self, node, path, out, where):
        o = self.out
        o.open(f"if ({self.expr.cond(node.cond)}) {{")
        self.sub(path, node.then, out)
        o.close()

    def visit_Switch(self, node, path, out, where):
        o = self.out
        key = o.fresh("key")
        o(f"const int64_t {key} = {self.expr(node.key)};")
        keyword = "if"
        for value, case in node.cases:
            o.open(f"{keyword} ({key} == {value}) {{")
            self.sub(path, case, out)
            o.depth -= 1
            keyword = "} else if"
        if node.default is not None:
            o.open("} else {" if node.cases else "{")
            self.sub(path, node.default, out)
            o.depth -= 1
        o("}")

    def sub(self, path, node, out):
        if isinstance(node, ir.Struct):
            self.struct(node, out)
        else:
            self.field(path, node, out)

    def bytes_field(self, path, node: ir.Bytes, out, where):
        o = self.out
        is_body = path == self.model.body and not self.scope
        size = "frame.body_length" if is_body else f"{self.access(path)}.size()"
        if node.prefix is not None:
            value = f"static_cast<int64_t>({size})"
            self.write_int(node.prefix, f'fitInt<{int_template(node.prefix)}>({value}, "{where}")', out)
        elif node.prefix_varint:
            o(f"writeVarInt({out}, {size});")
        elif node.size is not None:
            o(f'checkSize({self.expr(node.size)}, {size}, "{where}");')
        if is_body:
            o(f"writeBody(frame, source, {out});")
        else:
            o(f"{out}.add({self.access(path)});")

    def extension(self, path, node: ir.Extension, out, where):
        """A built value's literal bytes; a parsed one moved from the source, through the
        extension's write() when a mutation changed it."""
        o = self.out
        m = ext_member(path)
        if node.size is not None:
            o(f'checkSize({self.expr(node.size)}, frame.{m}_length, "{where}");')
        o.open(f"if (frame.{m}_state == ExtState::Built) {{")
        o(f"{out}.add(frame.{m}_literal);")
        o.depth -= 1
        o.open("} else {")
        field = o.fresh("field")
        o(f"Buffer::OwnedImpl {field};")
        o(f"takeField(source, frame.{m}_offset, frame.{m}_source_length, {field});")
        if node.header_map:
            o.open(f"if (frame.{m}_state == ExtState::Mutated) {{")
            o(f"{ext_namespace(node)}::write(frame.{m}, {field}, {out});")
            o.depth -= 1
            o.open("} else {")
            o(f"{out}.move({field});")
            o.close()
        else:
            o(f"{out}.move({field});")
        o.close()

    def array(self, path, node: ir.Array, out, where):
        o = self.out
        target = self.access(path)
        if node.prefix is not None:
            value = f"static_cast<int64_t>({target}.size())"
            self.write_int(node.prefix, f'fitInt<{int_template(node.prefix)}>({value}, "{where}")', out)
        else:
            o(f'checkSize({self.expr(node.count)}, {target}.size(), "{where}");')
        entry = o.fresh("entry")
        o.open(f"for (auto& {entry} : {target}) {{")
        self.scope[path] = entry
        if isinstance(node.element, ir.Struct):
            self.struct(node.element, out)
        else:
            self.field(path + ("value",), node.element, out)
        del self.scope[path]
        o.close()
