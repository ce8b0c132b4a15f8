"""Walking the IR: one visitor base over node kinds, and the tree's structure.

``NodeVisitor.visit(node, ...)`` calls ``visit_<Kind>(node, ...)``.  Every
``visit_<Kind>`` is abstract, so a visitor (a backend's emitter, the fuzzer's tracer,
the random frame maker, ...) that does not handle a node kind cannot be instantiated:
adding a node kind to ``nodes.Node`` makes every walker that must know it fail its
tests at once, instead of failing on a user's spec.

``children`` is the one place that knows which nodes contain others; ``iter_fields``,
``walk_nodes``, ``find_field`` build on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator, Optional, Tuple, get_args

from codecgen.ir.nodes import (
    Array, Extension, ExtOutput, Field, If, Node, Path, Region, Struct, Switch,
)

NODE_KINDS: Tuple[type, ...] = get_args(Node)


def _abstract(kind: type):
    def visit(self, node, *args: Any, **kwargs: Any):
        raise NotImplementedError
    visit.__name__ = f"visit_{kind.__name__}"
    return abstractmethod(visit)


class NodeVisitor(ABC):
    """Dispatch on the node kind; subclasses implement every ``visit_<Kind>``."""

    def visit(self, node: Node, *args: Any, **kwargs: Any):
        return getattr(self, "visit_" + type(node).__name__)(node, *args, **kwargs)


for _kind in NODE_KINDS:
    setattr(NodeVisitor, f"visit_{_kind.__name__}", _abstract(_kind))
NodeVisitor.__abstractmethods__ = frozenset(f"visit_{k.__name__}" for k in NODE_KINDS)


def children(node: Node) -> list[Node]:
    """The nodes directly inside ``node``, in wire order (Switch: cases, then default)."""
    if isinstance(node, Struct):
        return [f.node for f in node.fields]
    if isinstance(node, Array):
        return [node.element]
    if isinstance(node, Region):
        return [node.inner]
    if isinstance(node, If):
        return [node.then]
    if isinstance(node, Switch):
        return [c for _, c in node.cases] + ([node.default] if node.default is not None else [])
    return []


def walk_nodes(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, depth first."""
    yield node
    for child in children(node):
        yield from walk_nodes(child)


def iter_fields(node: Node) -> Iterator[Field]:
    """Every Field below ``node``, depth first, in wire order."""
    if isinstance(node, Struct):
        for f in node.fields:
            yield f
            yield from iter_fields(f.node)
        return
    for child in children(node):
        yield from iter_fields(child)


def extensions(root: Node) -> list[Field]:
    """Every extension field below ``root``, in wire order."""
    return [f for f in iter_fields(root) if isinstance(f.node, Extension)]


def find_field(root: Node, path: Path) -> Optional[Field]:
    for f in iter_fields(root):
        if f.path == path:
            return f
    return None


def find_output(root: Node, path: Path) -> Optional[Tuple[Field, ExtOutput]]:
    """The extension field and output that ``path`` (``field path + (output,)``) names."""
    if len(path) < 2:
        return None
    owner = find_field(root, path[:-1])
    if owner is None or not isinstance(owner.node, Extension):
        return None
    output = owner.node.output(path[-1])
    return (owner, output) if output is not None else None
