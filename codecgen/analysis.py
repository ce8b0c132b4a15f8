"""Backend-neutral questions about an IR, answered once for every backend."""

from __future__ import annotations

from typing import Iterator

from codecgen import ir


def _exprs_of(node: ir.Node) -> Iterator[ir.Expr]:
    if isinstance(node, (ir.Bytes, ir.Extension)) and node.size is not None:
        yield node.size
    elif isinstance(node, ir.Array) and node.count is not None:
        yield node.count
    elif isinstance(node, ir.If):
        yield node.cond
    elif isinstance(node, ir.Switch):
        yield node.key


def walk_nodes(node: ir.Node) -> Iterator[ir.Node]:
    yield node
    children: list = []
    if isinstance(node, ir.Struct):
        children = [f.node for f in node.fields]
    elif isinstance(node, ir.Array):
        children = [node.element]
    elif isinstance(node, ir.Region):
        children = [node.inner]
    elif isinstance(node, ir.If):
        children = [node.then]
    elif isinstance(node, ir.Switch):
        children = [c for _, c in node.cases] + ([node.default] if node.default is not None else [])
    for child in children:
        yield from walk_nodes(child)


def decode_refs(proto: ir.ProtocolIR) -> set[ir.Path]:
    """Fields whose values framing needs while decoding (sizes, counts, conditions)."""
    refs: set[ir.Path] = set()
    for node in walk_nodes(proto.frame):
        for expr in _exprs_of(node):
            refs.update(ir.expr_refs(expr))
    return refs


def role_exprs(proto: ir.ProtocolIR) -> list[ir.Expr]:
    r = proto.roles
    out = [rule.when for rule in r.message_type_rules]
    if r.response_error is not None:
        out.append(r.response_error)
    return out


def early_size_checks(proto: ir.ProtocolIR) -> dict[ir.Path, list[tuple[ir.Path, int, ir.Expr]]]:
    """Size checks to run as soon as their inputs are read, before the bytes in between.

    For a ``Bytes(size)`` whose size depends only on earlier fields, where every
    field between the last of those and the bytes has a fixed size, the size is
    checked right after that last input is read: a length beyond the limit is
    refused as soon as it is readable, not once the fixed fields after it arrive.
    Returns {path read last: [(sized field, bytes in between, size expression)]}.
    """
    checks: dict[ir.Path, list] = {}

    def visit_struct(st: ir.Struct):
        fields = list(st.fields)
        for i, f in enumerate(fields):
            node = f.node
            if isinstance(node, ir.Region):
                if isinstance(node.inner, ir.Struct):
                    visit_struct(node.inner)
            elif isinstance(node, ir.Struct):
                visit_struct(node)
            if not (isinstance(node, (ir.Bytes, ir.Extension)) and node.size is not None):
                continue
            refs = set(ir.expr_refs(node.size))
            last = max((j for j in range(i) if _reads(fields[j], refs)), default=None)
            if last is None or last == i - 1:
                continue
            between = fields[last + 1:i]
            if all(b.static_size is not None and not isinstance(b.node, (ir.If, ir.Switch))
                   for b in between):
                gap = sum(b.static_size for b in between)
                checks.setdefault(fields[last].path, []).append((f.path, gap, node.size))

    visit_struct(proto.frame)
    return checks


def _reads(field: ir.Field, refs: set) -> bool:
    if field.path in refs:
        return True
    if isinstance(field.node, ir.Bits):
        return any(field.path + (b.name,) in refs for b in field.node.fields)
    return False


def unconditional_paths(proto: ir.ProtocolIR) -> set[ir.Path]:
    """Scalar and bytes fields (and bit fields) that every frame has: not under an If,
    a Switch or an array.  Engines may read them without a presence check."""
    out: set[ir.Path] = {ir.DIRECTION_PATH}

    def visit(st: ir.Struct):
        for f in st.fields:
            node = f.node
            if isinstance(node, ir.Region):
                node = node.inner
                if not isinstance(node, ir.Struct):
                    out.add(f.path)
                    continue
            if isinstance(node, ir.Struct):
                visit(node)
            elif isinstance(node, ir.Bits):
                out.update(f.path + (b.name,) for b in node.fields)
            elif isinstance(node, (ir.Int, ir.VarInt, ir.Bytes)):
                out.add(f.path)

    visit(proto.frame)
    return out
