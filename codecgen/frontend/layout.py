"""Static layout (offsets and sizes) and framing rules over the wire tree."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from codecgen import ir
from codecgen.errors import SpecError
from codecgen.frontend.extension import check_extensions


def static_size(node: ir.Node) -> Optional[int]:
    """Size in bytes if it never depends on the wire, else None."""
    if isinstance(node, ir.Int):
        return node.type.width
    if isinstance(node, ir.Bits):
        return node.width
    if isinstance(node, ir.Const):
        return len(node.value)
    if isinstance(node, ir.Padding):
        return node.size
    if isinstance(node, ir.Bytes):
        if node.prefix is None and not node.prefix_varint and isinstance(node.size, ir.Lit):
            return node.size.value
        return None
    if isinstance(node, ir.Extension):
        return node.size.value if isinstance(node.size, ir.Lit) else None
    if isinstance(node, ir.Struct):
        total = 0
        for f in node.fields:
            size = static_size(f.node)
            if size is None:
                return None
            total += size
        return total
    if isinstance(node, ir.Switch):
        # Every branch the same size: a direction Switch of equal-sized layouts, say.  Without a
        # default an unmatched key parses nothing (construct's Pass), unless the key is the direction
        # and both directions have a case.
        sizes = [static_size(case) for _, case in node.cases]
        if node.default is not None:
            sizes.append(static_size(node.default))
        elif not (node.key == ir.Ref(ir.DIRECTION_PATH) and {v for v, _ in node.cases} >= {0, 1}):
            sizes.append(0)
        return sizes[0] if sizes and None not in sizes and len(set(sizes)) == 1 else None
    if isinstance(node, ir.Array):
        if isinstance(node.count, ir.Lit):
            element = static_size(node.element)
            return None if element is None else element * node.count.value
        return None
    return None


def _layout_struct(st: ir.Struct, base: Optional[int]) -> ir.Struct:
    fields, offset = [], base
    for f in st.fields:
        size = static_size(f.node)
        node = f.node
        if isinstance(node, ir.Struct):
            node = _layout_struct(node, offset)
        elif isinstance(node, ir.Region):
            node = replace(node, inner=_layout_node(node.inner))
        else:
            node = _layout_node(node)
        fields.append(replace(f, node=node, static_offset=offset, static_size=size))
        offset = None if offset is None or size is None else offset + size
    return ir.Struct(fields=tuple(fields))


def _layout_node(node: ir.Node) -> ir.Node:
    """Nested nodes get sizes, but offsets only where the frame start is fixed."""
    if isinstance(node, ir.Struct):
        return _layout_struct(node, None)
    if isinstance(node, ir.Array):
        return replace(node, element=_layout_node(node.element))
    if isinstance(node, ir.Region):
        return replace(node, inner=_layout_node(node.inner))
    if isinstance(node, ir.If):
        return replace(node, then=_layout_node(node.then))
    if isinstance(node, ir.Switch):
        cases = tuple((v, _layout_node(c)) for v, c in node.cases)
        default = _layout_node(node.default) if node.default is not None else None
        return replace(node, cases=cases, default=default)
    return node


def layout(frame: ir.Struct) -> ir.Struct:
    return _layout_struct(frame, 0)


def min_size(node: ir.Node) -> int:
    """The fewest bytes a node can take (bounds array counts by available bytes)."""
    fixed = static_size(node)
    if fixed is not None:
        return fixed
    if isinstance(node, ir.Bytes):
        if node.prefix is not None:
            return node.prefix.width
        return 1 if node.prefix_varint else 0
    if isinstance(node, ir.VarInt):
        return 1
    if isinstance(node, ir.Struct):
        return sum(min_size(f.node) for f in node.fields)
    if isinstance(node, ir.Region):
        return node.prefix.width
    if isinstance(node, ir.Array):
        return node.prefix.width if node.prefix is not None else 0
    return 0


def _scalar_paths(root: ir.Node) -> dict:
    found = {ir.DIRECTION_PATH: ir.Int(type=ir.IntType(1, False, ir.Endian.BIG))}
    for f in ir.iter_fields(root):
        found[f.path] = f.node
        if isinstance(f.node, ir.Bits):
            for b in f.node.fields:
                found[f.path + (b.name,)] = b
    return found


def check_frame(protocol: str, frame: ir.Struct) -> None:
    def fail(path, reason):
        return SpecError(protocol, "frame" + ("." + ir.dotted(path) if path else ""), reason)

    known = _scalar_paths(frame)

    def check_struct(st: ir.Struct, bounded: bool):
        for i, f in enumerate(st.fields):
            last = i == len(st.fields) - 1
            check_node(f.node, f.path, bounded and last, bounded)

    def check_node(node, path, may_be_greedy, bounded):
        if isinstance(node, ir.Extension):
            if node.greedy and not (may_be_greedy and bounded):
                raise fail(path, "an extension field without a size must be the last field inside a "
                                 "Prefixed region (give it a size: Ext(this.<len>, ...))")
            if node.size is not None:
                check_expr_kinds(node.size, path)
        elif isinstance(node, ir.Bytes) and node.greedy:
            if not may_be_greedy:
                why = ("inside a Prefixed length" if bounded else
                       "of a length-bounded frame (wrap it in Prefixed, or size it with Bytes(this.<len> ...))")
                raise fail(path, f"GreedyBytes must be the last field {why}")
        elif isinstance(node, ir.Int) and node.derived is not None:
            for ref in ir.expr_refs(node.derived):
                target = known.get(ref)
                if target is None:
                    raise fail(path, f"Rebuild refers to {ir.dotted(ref)!r}, which is not a field of the frame")
            check_expr_kinds(node.derived, path)
        elif isinstance(node, ir.Struct):
            check_struct(node, bounded and may_be_greedy)
        elif isinstance(node, ir.Region):
            inner = node.inner
            if isinstance(inner, ir.Struct):
                check_struct(inner, True)
            else:
                check_node(inner, path, True, True)
        elif isinstance(node, ir.Array):
            check_node(node.element, path, False, False)
            if min_size(node.element) == 0:
                raise fail(path, "array elements must take at least one byte (else the count is unbounded)")
        elif isinstance(node, ir.If):
            check_node(node.then, path, may_be_greedy, bounded)
        elif isinstance(node, ir.Switch):
            for _, case in node.cases:
                check_node(case, path, may_be_greedy, bounded)
            if node.default is not None:
                check_node(node.default, path, may_be_greedy, bounded)

    def check_expr_kinds(expr, path):
        if isinstance(expr, ir.LenOf):
            if not isinstance(known.get(expr.path), (ir.Bytes, ir.Array, ir.Extension)):
                raise fail(path, f"len_({ir.dotted(expr.path)}) needs a bytes or array field")
        elif isinstance(expr, ir.Ref):
            if not isinstance(known.get(expr.path), (ir.Int, ir.BitField, ir.VarInt)):
                raise fail(path, f"{ir.dotted(expr.path)!r} is not an integer field")
        elif isinstance(expr, ir.BinOp):
            check_expr_kinds(expr.lhs, path)
            check_expr_kinds(expr.rhs, path)
        elif isinstance(expr, ir.UnOp):
            check_expr_kinds(expr.operand, path)

    check_struct(frame, False)
    _check_shapes(protocol, frame, known, fail)
    check_extensions(protocol, frame, fail)


def _check_shapes(protocol: str, frame: ir.Struct, known: dict, fail) -> None:
    """Shapes every backend supports, refused here rather than in a backend."""
    derived = {p for p, n in known.items() if isinstance(n, ir.Int) and n.derived is not None}
    members: dict[str, ir.Path] = {}
    seen: dict[ir.Path, object] = {}

    def conditions(node, path):
        exprs = [node.cond] if isinstance(node, ir.If) else [node.key]
        for e in exprs:
            for ref in ir.expr_refs(e):
                if ref in derived:
                    raise fail(path, f"the condition reads {ir.dotted(ref)!r}, a derived (Rebuild) "
                                     "field; conditions may read plain fields only")

    def element_ok(node, path):
        for inner in _descendants(node):
            if isinstance(inner, (ir.Array, ir.Region, ir.If, ir.Switch, ir.Extension)):
                raise fail(path, f"array elements may hold integers, bit fields, constants and "
                                 f"bytes only, not {type(inner).__name__}")
            if isinstance(inner, ir.Struct) and inner is not node:
                raise fail(path, "array elements may not nest structs")

    def visit(node, path):
        if isinstance(node, (ir.If, ir.Switch)):
            conditions(node, path)
        if isinstance(node, ir.Switch):
            for value, case in node.cases:
                if not isinstance(case, ir.Struct):
                    raise fail(path, f"Switch case {value} must be a Struct (wrap the field in "
                                     "Struct(...)) so each case has its own field names")
            if node.default is not None and not isinstance(node.default, ir.Struct):
                raise fail(path, "the Switch default must be a Struct or Pass")
        if isinstance(node, ir.Array):
            element_ok(node.element, path)

    for f in ir.iter_fields(frame):
        visit(f.node, f.path)
        previous = seen.get(f.path)
        if previous is not None and previous != f.node:
            raise fail(f.path, "declared twice with different types (in two Switch cases?)")
        seen[f.path] = f.node
        name = "_".join(f.path)
        if members.get(name, f.path) != f.path:
            raise fail(f.path, f"its flattened name {name!r} collides with field "
                               f"{ir.dotted(members[name])!r}; rename one of them")
        members[name] = f.path


def _descendants(node):
    yield node
    if isinstance(node, ir.Struct):
        for f in node.fields:
            yield from _descendants(f.node)
    elif isinstance(node, ir.Array):
        yield from _descendants(node.element)
    elif isinstance(node, ir.Region):
        yield from _descendants(node.inner)
    elif isinstance(node, ir.If):
        yield from _descendants(node.then)
    elif isinstance(node, ir.Switch):
        for _, c in node.cases:
            yield from _descendants(c)
        if node.default is not None:
            yield from _descendants(node.default)
