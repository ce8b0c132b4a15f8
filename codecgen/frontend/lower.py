"""Lower a construct tree into the IR's wire nodes.

One function per construct class (``_lower_<Class>``), dispatched by class
name.  Anything not in the table is refused with the dotted field path and
the construct type, so no backend ever meets an unsupported construct.
"""

from __future__ import annotations

import operator
from typing import Callable, Optional

import construct as cs
import construct.expr as cx

from codecgen import ir
from codecgen.errors import SpecError
from codecgen.frontend.extension import is_extension, lower_extension

_FMT_WIDTH = {"B": 1, "b": 1, "H": 2, "h": 2, "L": 4, "l": 4, "I": 4, "i": 4, "Q": 8, "q": 8}

_BINOPS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.floordiv: "//",
    operator.mod: "%", operator.and_: "&", operator.or_: "|", operator.xor: "^",
    operator.lshift: "<<", operator.rshift: ">>", operator.eq: "==", operator.ne: "!=",
    operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=",
}
_UNOPS = {operator.neg: "-", operator.inv: "~", operator.not_: "not"}


# The construct classes a spec may use, as an author names them (the one list: error messages
# and docs quote it).
SUPPORTED = ("Struct", "Const", "Int*", "Bytes", "Enum", "FlagsEnum", "BitStruct", "PascalString",
             "Prefixed", "PrefixedArray", "Array", "Rebuild", "If", "Switch", "Padding", "VarInt",
             "BoundedVarInt", "ZigZag", "GreedyBytes")


class Scope:
    """Which fields are already defined, for resolving ``this`` paths."""

    def __init__(self, protocol: str):
        self.protocol = protocol
        self.defined: dict[ir.Path, object] = {}  # path -> Int | BitField | VarInt | Bytes | Array
        self.enums: dict[ir.Path, dict[str, int]] = {}
        self.flags: dict[ir.Path, dict[str, int]] = {}

    def fail(self, path: ir.Path, reason: str) -> SpecError:
        return SpecError(self.protocol, "frame" + ("." + ir.dotted(path) if path else ""), reason)


class Lowerer:
    def __init__(self, protocol: str, max_array_count: int):
        self.scope = Scope(protocol)
        self.max_array_count = max_array_count
        # Extension outputs (path -> ExtOutput): known to roles only, after the frame is lowered.
        self.ext_outputs: dict[ir.Path, ir.ExtOutput] = {}

    # ------------------------------------------------------------------ entry

    def lower_frame(self, frame) -> ir.Struct:
        if not isinstance(frame, cs.Struct):
            raise self.scope.fail((), f"the frame must be a construct Struct, got {type(frame).__name__}")
        return self._struct(frame, ())

    # ------------------------------------------------------------------ nodes

    def _struct(self, st: cs.Struct, prefix: ir.Path) -> ir.Struct:
        fields = []
        for index, sub in enumerate(st.subcons):
            name = sub.name if sub.name else f"_{index}"
            path = prefix + (name,)
            node = self.node(sub, path, ctx=prefix)
            if node is None:
                continue
            fields.append(ir.Field(name=name, path=path, node=node))
        return ir.Struct(fields=tuple(fields))

    def node(self, con, path: ir.Path, ctx: ir.Path):
        """Lower one construct; ``ctx`` is the path of the enclosing Struct (for ``this``)."""
        if is_extension(con):
            node = lower_extension(self, con, path, ctx)
            self._define(path, node)
            self.ext_outputs.update({path + (o.name,): o for o in node.outputs})
            return node
        kind = type(con).__name__
        handler: Optional[Callable] = getattr(self, "_lower_" + kind, None)
        if handler is None:
            raise self.scope.fail(path, f"{kind} is not supported by codecgen "
                                        f"(supported: {', '.join(SUPPORTED)})")
        return handler(con, path, ctx)

    def _lower_Renamed(self, con, path, ctx):
        return self.node(con.subcon, path, ctx)

    def _lower_Struct(self, con, path, ctx):
        return self._struct(con, path)

    def _lower_Pass(self, con, path, ctx):
        return None

    def _int_type(self, con, path) -> ir.IntType:
        kind = type(con).__name__
        if kind == "FormatField":
            fmt = con.fmtstr
            order, code = (fmt[0], fmt[1:]) if fmt[0] in "<>=!" else ("=", fmt)
            if code not in _FMT_WIDTH:
                raise self.scope.fail(path, f"FormatField {fmt!r} is not an integer; only integers are supported")
            endian = ir.Endian.LITTLE if order == "<" else ir.Endian.BIG
            if _FMT_WIDTH[code] == 1:
                endian = ir.Endian.BIG
            if order == "=":
                raise self.scope.fail(path, f"FormatField {fmt!r} uses native byte order; say big or little")
            return ir.IntType(width=_FMT_WIDTH[code], signed=code.islower(), endian=endian)
        if kind == "BytesInteger":
            if not isinstance(con.length, int):
                raise self.scope.fail(path, "BytesInteger length must be a fixed number")
            if con.length not in (1, 2, 3, 4, 5, 6, 7, 8):
                raise self.scope.fail(path, f"BytesInteger of {con.length} bytes is not supported (1..8)")
            return ir.IntType(width=con.length, signed=con.signed,
                              endian=ir.Endian.LITTLE if con.swapped else ir.Endian.BIG)
        raise self.scope.fail(path, f"{kind} is not an integer type")

    def _define(self, path, what):
        self.scope.defined[path] = what

    def _lower_FormatField(self, con, path, ctx):
        node = ir.Int(type=self._int_type(con, path))
        self._define(path, node)
        return node

    _lower_BytesInteger = _lower_FormatField

    def _lower_Enum(self, con, path, ctx):
        inner = self.node(con.subcon, path, ctx)
        if not isinstance(inner, ir.Int):
            raise self.scope.fail(path, "Enum must wrap an integer")
        mapping = {str(k): int(v) for k, v in con.encmapping.items()}
        node = ir.Int(type=inner.type, derived=inner.derived, enum=tuple(sorted(mapping.items(), key=lambda kv: kv[1])))
        self.scope.enums[path] = mapping
        self._define(path, node)
        return node

    def _lower_FlagsEnum(self, con, path, ctx):
        inner = self.node(con.subcon, path, ctx)
        if not isinstance(inner, ir.Int):
            raise self.scope.fail(path, "FlagsEnum must wrap an integer")
        flags = {str(k): int(v) for k, v in con.flags.items()}
        node = ir.Int(type=inner.type, flags=tuple(sorted(flags.items(), key=lambda kv: kv[1])))
        self.scope.flags[path] = flags
        self._define(path, node)
        return node

    def _lower_Rebuild(self, con, path, ctx):
        inner = self.node(con.subcon, path, ctx)
        if not isinstance(inner, ir.Int):
            raise self.scope.fail(path, "Rebuild is supported on integer fields only")
        expr = self.expr(con.func, path, ctx, what="Rebuild value", allow_later=True)
        node = ir.Int(type=inner.type, derived=expr, enum=inner.enum, flags=inner.flags)
        self._define(path, node)
        return node

    def _lower_Const(self, con, path, ctx):
        try:
            value = con.subcon.build(con.value)
        except Exception as exc:  # construct raises many types here
            reason = [line for line in str(exc).splitlines() if line.strip()]
            raise self.scope.fail(path, f"Const value cannot be built: {reason[-1] if reason else exc}") from None
        if not value:
            raise self.scope.fail(path, "empty Const")
        return ir.Const(value=bytes(value))

    def _lower_Bytes(self, con, path, ctx):
        size = self.size_expr(con.length, path, ctx)
        node = ir.Bytes(size=size)
        self._define(path, node)
        return node

    def _lower_GreedyBytes(self, con, path, ctx):
        node = ir.Bytes()
        self._define(path, node)
        return node

    def _lower_VarInt(self, con, path, ctx):
        node = ir.VarInt()
        self._define(path, node)
        return node

    def _lower_BoundedVarInt(self, con, path, ctx):
        node = ir.VarInt(max_bytes=con.max_bytes)
        self._define(path, node)
        return node

    def _lower_ZigZag(self, con, path, ctx):
        node = ir.ZigZag()
        self._define(path, node)
        return node

    def _lower_Padded(self, con, path, ctx):
        if type(con.subcon).__name__ != "Pass":
            raise self.scope.fail(path, "Padded is supported only as Padding(n)")
        if not isinstance(con.length, int):
            raise self.scope.fail(path, "Padding size must be a fixed number")
        return ir.Padding(size=con.length)

    def _lower_StringEncoded(self, con, path, ctx):
        inner = con.subcon
        if type(inner).__name__ == "Prefixed" and type(inner.subcon).__name__ == "GreedyBytes" and not inner.includelength:
            node = self._prefixed_bytes(inner, path)
            node = ir.Bytes(size=None, prefix=node.prefix, prefix_varint=node.prefix_varint, encoding=con.encoding)
            self._define(path, node)
            return node
        if type(inner).__name__ in ("Bytes", "GreedyBytes"):
            node = self.node(inner, path, ctx)
            node = ir.Bytes(size=node.size, encoding=con.encoding)
            self._define(path, node)
            return node
        raise self.scope.fail(path, f"only PascalString and GreedyString are supported among strings "
                                    f"(this one wraps {type(inner).__name__})")

    def _prefixed_bytes(self, con, path) -> ir.Bytes:
        if type(con.lengthfield).__name__ == "VarInt":
            return ir.Bytes(prefix_varint=True)
        return ir.Bytes(prefix=self._int_type(con.lengthfield, path + ("<length>",)))

    def _lower_Prefixed(self, con, path, ctx):
        if type(con.subcon).__name__ == "GreedyBytes" and not con.includelength:
            node = self._prefixed_bytes(con, path)
            self._define(path, node)
            return node
        if type(con.lengthfield).__name__ == "VarInt":
            raise self.scope.fail(path, "Prefixed with a VarInt length is supported only around GreedyBytes")
        prefix = self._int_type(con.lengthfield, path + ("<length>",))
        inner = self.node(con.subcon, path, ctx)
        if inner is None:
            raise self.scope.fail(path, "Prefixed around nothing")
        return ir.Region(prefix=prefix, inner=inner, include_length=bool(con.includelength))

    def _lower_FocusedSeq(self, con, path, ctx):
        names = [s.name for s in con.subcons]
        if con.parsebuildfrom == "items" and names == ["count", "items"]:
            count_con = con.subcons[0].subcon
            if type(count_con).__name__ == "Rebuild":
                count_con = count_con.subcon
            prefix = self._int_type(count_con, path + ("<count>",))
            array = con.subcons[1].subcon
            element = self._element(array.subcon, path, ctx)
            node = ir.Array(element=element, prefix=prefix, max_count=self.max_array_count)
            self._define(path, node)
            return node
        raise self.scope.fail(path, "FocusedSeq is supported only as PrefixedArray")

    def _element(self, con, path, ctx):
        # Array elements live in their own context: refs inside must stay inside.
        saved = dict(self.scope.defined)
        element = self.node(con, path, ctx)
        self.scope.defined = saved
        if element is None:
            raise self.scope.fail(path, "array of nothing")
        return element

    def _lower_Array(self, con, path, ctx):
        if con.discard:
            raise self.scope.fail(path, "Array(discard=True) is not supported")
        count = self.size_expr(con.count, path, ctx, what="count")
        element = self._element(con.subcon, path, ctx)
        node = ir.Array(element=element, count=count, max_count=self.max_array_count)
        self._define(path, node)
        return node

    def _lower_IfThenElse(self, con, path, ctx):
        cond = self.expr(con.condfunc, path, ctx, what="condition")
        then = self.node(con.thensubcon, path, ctx)
        other = self.node(con.elsesubcon, path, ctx)
        if then is None:
            raise self.scope.fail(path, "If with nothing in its then-branch")
        if other is None:
            return ir.If(cond=cond, then=then)
        if not (isinstance(then, ir.Struct) and isinstance(other, ir.Struct)):
            raise self.scope.fail(path, "IfThenElse needs a Struct in both branches (wrap each field "
                                        "in Struct(...)) so each branch has its own field names")
        return ir.Switch(key=ir.BinOp("!=", cond, ir.Lit(0)), cases=((1, then),), default=other)

    def _lower_Switch(self, con, path, ctx):
        key = self.expr(con.keyfunc, path, ctx, what="Switch key")
        enum = self.scope.enums.get(key.path) if isinstance(key, ir.Ref) else None
        cases = []
        for value, sub in con.cases.items():
            if isinstance(value, str):
                if not enum or value not in enum:
                    raise self.scope.fail(path, f"Switch case {value!r} is not a known enum name")
                value = enum[value]
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int):
                raise self.scope.fail(path, f"Switch case keys must be integers or enum names, got {value!r}")
            node = self.node(sub, path, ctx)
            cases.append((value, node if node is not None else ir.Struct(fields=())))
        default = self.node(con.default, path, ctx)
        return ir.Switch(key=key, cases=tuple(cases), default=default)

    def _lower_Transformed(self, con, path, ctx):
        inner = con.subcon
        if type(inner).__name__ != "Struct" or con.decodeamount != con.encodeamount:
            raise self.scope.fail(path, "Transformed is supported only as BitStruct")
        width = con.decodeamount
        bits, offset = [], 0
        for index, sub in enumerate(inner.subcons):
            name = sub.name if sub.name else f"_{index}"
            target = sub.subcon if type(sub).__name__ == "Renamed" else sub
            enum = ()
            if type(target).__name__ == "Enum":
                enum = tuple(sorted(((str(k), int(v)) for k, v in target.encmapping.items()), key=lambda kv: kv[1]))
                target = target.subcon
            kind = type(target).__name__
            if kind == "BitsInteger":
                if not isinstance(target.length, int) or target.signed or target.swapped:
                    raise self.scope.fail(path + (name,), "BitsInteger must be unsigned, big-endian, fixed width")
                bit = ir.BitField(name=name, offset=offset, width=target.length, is_flag=False, enum=enum)
            elif kind == "Flag":
                bit = ir.BitField(name=name, offset=offset, width=1, is_flag=True)
            elif kind == "Padded" and type(target.subcon).__name__ == "Pass":
                offset += target.length
                continue
            else:
                raise self.scope.fail(path + (name,), f"{kind} inside a BitStruct is not supported")
            bits.append(bit)
            self._define(path + (name,), bit)
            if enum:
                self.scope.enums[path + (name,)] = dict(enum)
            offset += bit.width
        if offset != width * 8:
            raise self.scope.fail(path, f"BitStruct bits add up to {offset}, not a whole number of bytes")
        return ir.Bits(width=width, fields=tuple(bits))

    # ------------------------------------------------------------------ expressions

    def size_expr(self, value, path, ctx, what="size") -> ir.Expr:
        expr = self.expr(value, path, ctx, what=what)
        if isinstance(expr, ir.Lit) and expr.value < 0:
            raise self.scope.fail(path, f"{what} {expr.value} is negative")
        return expr

    def expr(self, value, path, ctx, what="size", allow_later=False) -> ir.Expr:
        if isinstance(value, bool):
            return ir.Lit(int(value))
        if isinstance(value, int):
            return ir.Lit(value)
        if isinstance(value, cx.ExprMixin):
            return self._expr(value, path, ctx, what, allow_later)
        if callable(value):
            raise self.scope.fail(path, f"{what} is a Python lambda; use this.<field> arithmetic")
        raise self.scope.fail(path, f"{what} {value!r} is not an integer or a this-expression")

    def _expr(self, e, path, ctx, what, allow_later):
        if isinstance(e, cx.Path):
            return self._ref(e, path, ctx, what, allow_later)
        if isinstance(e, cx.FuncPath):
            func = e._FuncPath__func
            operand = e._FuncPath__operand
            if func is not len or not isinstance(operand, cx.Path):
                raise self.scope.fail(path, f"{what}: only len_(this.<field>) is supported among functions")
            ref = self._ref(operand, path, ctx, what, allow_later, for_len=True)
            return ir.LenOf(ref.path)
        if isinstance(e, cx.BinExpr):
            op = _BINOPS.get(e.op)
            if op is None:
                raise self.scope.fail(path, f"{what}: operator {e.op!r} is not supported")
            lhs, rhs = e.lhs, e.rhs
            lhs_ir = self._operand(lhs, rhs, path, ctx, what, allow_later)
            rhs_ir = self._operand(rhs, lhs, path, ctx, what, allow_later)
            return ir.BinOp(op, lhs_ir, rhs_ir)
        if isinstance(e, cx.UniExpr):
            op = _UNOPS.get(e.op)
            if op is None:
                raise self.scope.fail(path, f"{what}: operator {e.op!r} is not supported")
            return ir.UnOp(op, self.expr(e.operand, path, ctx, what, allow_later))
        raise self.scope.fail(path, f"{what}: {type(e).__name__} expressions are not supported")

    def _operand(self, value, other, path, ctx, what, allow_later):
        if isinstance(value, str):
            # An enum name compared with an enum field: this.kind == "REQUEST".
            other_ir = self.expr(other, path, ctx, what, allow_later) if isinstance(other, cx.ExprMixin) else None
            enum = self.scope.enums.get(other_ir.path) if isinstance(other_ir, ir.Ref) else None
            if enum and value in enum:
                return ir.Lit(enum[value])
            raise self.scope.fail(path, f"{what}: string {value!r} is not a name of the enum it is compared with")
        return self.expr(value, path, ctx, what, allow_later)

    def _ref(self, e, path, ctx, what, allow_later, for_len=False):
        names = []
        node = e
        while isinstance(node, cx.Path):
            field = node._Path__field
            parent = node._Path__parent
            if field is None:
                break
            names.append(field)
            node = parent
        names.reverse()
        if names and names[-1] == "_direction" and all(n == "_" for n in names[:-1]):
            return ir.Ref(ir.DIRECTION_PATH)
        base = list(ctx)
        resolved = []
        for i, name in enumerate(names):
            if name == "_" and not resolved:
                if not base:
                    raise self.scope.fail(path, f"{what}: this._ goes above the frame")
                base.pop()
                continue
            if name == "_root" and not resolved and i == 0:
                base = []
                continue
            resolved.append(name)
        full = tuple(base) + tuple(resolved)
        flag_test = None
        target = self.scope.defined.get(full)
        if target is None and len(full) > 1 and full[:-1] in self.scope.flags:
            mask = self.scope.flags[full[:-1]].get(full[-1])
            if mask is not None:
                flag_test = (full[:-1], mask)
        if flag_test is not None:
            return ir.BinOp("!=", ir.BinOp("&", ir.Ref(flag_test[0]), ir.Lit(flag_test[1])), ir.Lit(0))
        if target is None:
            if allow_later:
                return ir.LenOf(full) if for_len else ir.Ref(full)
            raise self.scope.fail(path, f"{what} refers to {ir.dotted(full)!r}, which is not an earlier "
                                        "field (sizes may depend on earlier fields only)")
        if for_len:
            if not isinstance(target, (ir.Bytes, ir.Array, ir.Extension)):
                raise self.scope.fail(path, f"{what}: len_({ir.dotted(full)}) needs a bytes or array field")
        elif isinstance(target, ir.ExtOutput) and target.text:
            raise self.scope.fail(path, f"{what} refers to {ir.dotted(full)!r}, a text output of an extension")
        elif not isinstance(target, (*ir.SCALARS, ir.BitField, ir.ExtOutput)):
            raise self.scope.fail(path, f"{what} refers to {ir.dotted(full)!r}, which is not an integer field")
        return ir.Ref(full)
