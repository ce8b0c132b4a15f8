"""Backend-neutral questions about an IR, answered once for every backend."""

from __future__ import annotations

from typing import Iterator

from codecgen import ir


def _exprs_of(node: ir.Node) -> Iterator[ir.Expr]:
    if isinstance(node, ir.Bytes) and node.size is not None:
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
