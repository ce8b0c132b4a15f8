"""Backend-neutral questions about an IR, answered once for every backend.

``facts(proto)`` computes them once into a frozen ``Facts`` that every consumer (the
emitters, the fuzzer, the random frame maker) receives: the fields framing reads, the
early size checks, the fields every frame has.  ``static_size`` / ``min_size`` are the
size rules the frontend's layout pass and the emitters share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Iterator, Mapping, Optional

from codecgen.ir import nodes as ir
from codecgen.ir.expr import expr_refs
from codecgen.ir.walk import walk_nodes

EarlyCheck = tuple  # (sized field path, bytes in between, size expression, condition or None)


@dataclass(frozen=True)
class Facts:
    decode_refs: frozenset  # fields framing reads while decoding (sizes, counts, conditions)
    early_size_checks: Mapping  # path read last -> tuple of EarlyCheck
    unconditional: frozenset  # leaf paths every frame has (no presence check needed)


@lru_cache(maxsize=64)
def facts(proto: ir.ProtocolIR) -> Facts:
    """The side table of ``proto``, computed once (``ProtocolIR`` is frozen and hashable)."""
    return Facts(
        decode_refs=frozenset(decode_refs(proto)),
        early_size_checks=MappingProxyType({k: tuple(v) for k, v in early_size_checks(proto).items()}),
        unconditional=frozenset(unconditional_paths(proto)),
    )


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


def min_size(node: ir.Node) -> int:
    """The fewest bytes a node can take (bounds array counts by available bytes)."""
    fixed = static_size(node)
    if fixed is not None:
        return fixed
    if isinstance(node, ir.Bytes):
        if node.prefix is not None:
            return node.prefix.width
        return 1 if node.prefix_varint else 0
    if isinstance(node, (ir.VarInt, ir.ZigZag)):
        return 1
    if isinstance(node, ir.Struct):
        return sum(min_size(f.node) for f in node.fields)
    if isinstance(node, ir.Region):
        return node.prefix.width
    if isinstance(node, ir.Array):
        return node.prefix.width if node.prefix is not None else 0
    return 0


def _exprs_of(node: ir.Node) -> Iterator[ir.Expr]:
    if isinstance(node, (ir.Bytes, ir.Extension)) and node.size is not None:
        yield node.size
    elif isinstance(node, ir.Array) and node.count is not None:
        yield node.count
    elif isinstance(node, ir.If):
        yield node.cond
    elif isinstance(node, ir.Switch):
        yield node.key


def decode_refs(proto: ir.ProtocolIR) -> set[ir.Path]:
    """Fields whose values framing needs while decoding (sizes, counts, conditions)."""
    refs: set[ir.Path] = set()
    for node in walk_nodes(proto.frame):
        for expr in _exprs_of(node):
            refs.update(expr_refs(expr))
    return refs


def early_size_checks(proto: ir.ProtocolIR) -> dict[ir.Path, list[tuple[ir.Path, int, ir.Expr, ir.Expr | None]]]:
    """Size checks to run as soon as their inputs are read, before the bytes in between.

    For a ``Bytes(size)`` (or sized extension) whose size depends only on earlier fields,
    where every field read between the last of those and the bytes has a fixed size, the
    size is checked right after that last input is read: a length beyond the limit is
    refused as soon as it is readable, not once the fixed fields after it arrive. The
    fields in between are counted in wire order through nested Structs and into Switch
    cases; a check that reaches into a case runs only when the case's condition holds
    (``when``, over fields read by then). Regions start afresh (their limit differs).
    Returns {path read last: [(sized field, bytes in between, size expression, when)]}.
    """
    checks: dict[ir.Path, list] = {}

    def walk(st: ir.Struct, seq: list) -> None:
        # seq: what is read before the current field, in wire order, within one limit:
        # ("field", Field) for leaves, ("case", condition) where a Switch case was entered.
        for f in st.fields:
            node = f.node
            if isinstance(node, ir.Struct):
                walk(node, seq)
                continue
            if isinstance(node, ir.Region) and isinstance(node.inner, ir.Struct):
                walk(node.inner, [])
            elif isinstance(node, ir.Switch):
                for value, case in node.cases:
                    if isinstance(case, ir.Struct):
                        walk(case, seq + [("case", ir.BinOp("==", node.key, ir.Lit(value)))])
                if isinstance(node.default, ir.Struct):
                    other = None
                    for value, _ in node.cases:
                        test = ir.BinOp("!=", node.key, ir.Lit(value))
                        other = test if other is None else ir.BinOp("and", other, test)
                    walk(node.default, seq + ([("case", other)] if other is not None else []))
            elif isinstance(node, (ir.Bytes, ir.Extension)) and node.size is not None:
                check = _early_check(seq, node.size)
                if check is not None:
                    last, gap, when = check
                    checks.setdefault(last, []).append((f.path, gap, node.size, when))
            seq.append(("field", f))

    walk(proto.frame, [])
    return checks


def _early_check(seq: list, size: ir.Expr):
    """(path read last, bytes in between, condition) for a size check, or None."""
    refs = set(expr_refs(size))
    gap, between, conditions = 0, [], []
    for kind, item in reversed(seq):
        if kind == "case":
            conditions.append(item)
            continue
        if _reads(item, refs):
            break
        if item.static_size is None or isinstance(item.node, (ir.If, ir.Switch)):
            return None
        gap += item.static_size
        between.append(item.path)
    else:
        return None
    if not between:
        return None  # the sized field comes right after its last input: checked there anyway
    when = None
    for condition in reversed(conditions):
        if any(ref in between for ref in expr_refs(condition)):
            return None  # the case is chosen by a field read after the length
        when = condition if when is None else ir.BinOp("and", when, condition)
    return item.path, gap, when


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
            elif isinstance(node, (*ir.SCALARS, ir.Bytes)):
                out.add(f.path)

    visit(proto.frame)
    return out
