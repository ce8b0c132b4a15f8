"""The IR package: one visitor base that refuses forgotten node kinds, one expression
evaluator and translator base, facts computed once, and no construct on import."""

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import codecgen
from codecgen import ir
from codecgen.ir.expr import EvalError, ExprTranslator, evaluate, expr_text
from codecgen.ir.walk import NODE_KINDS, NodeVisitor, children, iter_fields

from conftest import ROOT


def _all_visitors():
    for mod in pkgutil.walk_packages(codecgen.__path__, "codecgen."):
        if ".ext." in mod.name or mod.name.endswith((".ext", "__main__")):
            continue
        importlib.import_module(mod.name)
    seen, todo = [], list(NodeVisitor.__subclasses__())
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    return seen


def test_every_walker_handles_every_node_kind():
    visitors = _all_visitors()
    names = {f"{c.__module__}.{c.__name__}" for c in visitors}
    # the walkers the issue names: Python backend, C++ emitters, fuzz tracer and tokens,
    # random values, summary, JSON conversion
    for expected in ("codecgen.backends.python.emit.WalkerEmitter", "codecgen.backends.cpp.emit.ParseEmitter",
                     "codecgen.backends.cpp.emit.WriteEmitter", "codecgen.backends.cpp.emit.FrameModel",
                     "codecgen.fuzz.spans.Tracer", "codecgen.verify.values.ValueGen", "codecgen.summary._NodeText",
                     "codecgen.engines._Convert", "codecgen.fuzz.inputs._Tokens",
                     "codecgen.backends.wireshark.emit.WalkerEmitter"):
        assert expected in names
    for cls in visitors:
        assert not inspect.isabstract(cls), f"{cls.__qualname__} misses {sorted(cls.__abstractmethods__)}"


def test_a_visitor_that_forgets_a_node_kind_cannot_be_made():
    methods = {f"visit_{k.__name__}": (lambda self, node: None) for k in NODE_KINDS if k is not ir.VarInt}
    Partial = type("Partial", (NodeVisitor,), methods)
    with pytest.raises(TypeError, match="visit_VarInt"):
        Partial()
    Full = type("Full", (NodeVisitor,), {**methods, "visit_VarInt": lambda self, node: "varint"})
    assert Full().visit(ir.VarInt()) == "varint"


def test_children_and_fields_in_wire_order():
    a = ir.Field("a", ("a",), ir.Int(ir.IntType(1, False, ir.Endian.BIG)))
    b = ir.Field("b", ("s", "b"), ir.VarInt())
    switch = ir.Switch(ir.Ref(("a",)), ((1, ir.Struct((b,))),), default=ir.Padding(2))
    frame = ir.Struct((a, ir.Field("s", ("s",), switch)))
    assert children(switch) == [ir.Struct((b,)), ir.Padding(2)]
    assert [f.path for f in iter_fields(frame)] == [("a",), ("s",), ("s", "b")]


def test_one_evaluator():
    e = ir.BinOp("+", ir.BinOp("//", ir.Lit(-7), ir.Lit(2)), ir.LenOf(("body",)))
    assert evaluate(e, lambda leaf: 10) == 6  # floor division, like the engines
    assert evaluate(ir.UnOp("not", ir.Lit(0)), lambda leaf: 0) == 1
    for bad in (ir.BinOp("%", ir.Lit(1), ir.Lit(0)), ir.BinOp("<<", ir.Lit(1), ir.Lit(64)),
                ir.BinOp(">>", ir.Lit(1), ir.Lit(-1))):
        with pytest.raises(EvalError):
            evaluate(bad, lambda leaf: 0)
    assert expr_text(e) == "((-7 // 2) + len(body))"


def test_a_translator_must_give_every_hook():
    class NoUnary(ExprTranslator):
        def lit(self, e): return ""
        def ref(self, e): return ""
        def len_of(self, e): return ""
        def binop(self, e): return ""

    with pytest.raises(TypeError, match="unop"):
        NoUnary()


def test_facts_are_computed_once_and_frozen():
    from codecgen.frontend import load
    from codecgen.ir.facts import facts

    proto = load(ROOT / "protocols" / "awesomerpc.py")
    f = facts(proto)
    assert f is facts(proto)
    assert ("pack_len",) in f.decode_refs
    with pytest.raises(TypeError):
        f.early_size_checks[("x",)] = ()  # a read-only mapping


def test_importing_the_ir_and_backends_loads_neither_construct_nor_the_frontend():
    code = ("import sys, codecgen.ir, codecgen.ir.facts, codecgen.backends.cpp, codecgen.backends.k8s, "
            "codecgen.backends.python.emit;"
            "bad = [m for m in sys.modules if m == 'construct' or m.startswith('codecgen.frontend')];"
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_package_face_still_offers_the_spec_names():
    assert codecgen.Protocol.__module__ == "codecgen.spec"
    assert "BoundedVarInt" in dir(codecgen)
    with pytest.raises(AttributeError):
        codecgen.NoSuchName  # noqa: B018


def _part(module: str) -> str:
    """The part a module belongs to: codecgen.<part> (a top-level module is its own part)."""
    return ".".join(module.split(".")[:2])


def test_no_module_reaches_into_another_parts_private_names():
    import ast

    problems = []
    package = ROOT / "codecgen"
    for file in sorted([*package.rglob("*.py"), *(ROOT / "bench").glob("*.py")]):
        module = ".".join(file.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        tree = ast.parse(file.read_text())
        aliases = {}  # local name -> module it names
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codecgen"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    aliases[alias.asname or alias.name] = target
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and _part(node.module) != _part(module):
                        problems.append(f"{module}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("codecgen") and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                target = aliases.get(node.value.id)
                if target and _part(target) != _part(module):
                    problems.append(f"{module}: {node.value.id}.{node.attr} ({target})")
            # the generated reference module's private helpers belong to backends/python
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and (getattr(node.value, "id", None) == "module" or getattr(node.value, "attr", None) == "module") \
                    and not module.startswith("codecgen.backends.python"):
                problems.append(f"{module}: module.{node.attr} (the generated reference module's private name)")
    assert not problems, "\n".join(problems)


def test_host_model_targets_are_the_pins_targets():
    from codecgen.hostmodel.build import TARGETS
    from codecgen.pins import target_names

    assert set(TARGETS) == set(target_names())


# What each part may import (ARCHITECTURE.md draws the same table). A part not listed (the CLI,
# the bridge) is not checked here. "codecgen" is the package face (the spec names).
ALLOWED = {
    "codecgen.ir": set(),
    "codecgen.spec": {"codecgen.ir", "construct"},
    "codecgen.frontend": {"codecgen.ir", "codecgen.spec", "codecgen.ext", "codecgen.naming", "codecgen.errors",
                          "codecgen.builtins", "construct"},
    "codecgen.backends.python": {"codecgen.ir", "codecgen.naming", "codecgen.errors", "codecgen.version",
                                 "codecgen.backends.templating", "codecgen.ext"},
    "codecgen.backends.cpp": {"codecgen.ir", "codecgen.naming", "codecgen.errors", "codecgen.version",
                              "codecgen.backends.templating", "codecgen.pins"},
    "codecgen.backends.k8s": {"codecgen.ir", "codecgen.naming", "codecgen.errors", "codecgen.version",
                              "codecgen.backends.templating", "codecgen.pins"},
    "codecgen.backends.wireshark": {"codecgen.ir", "codecgen.backends.templating", "codecgen.backends.k8s"},
    "codecgen.summary": {"codecgen.ir"},
    "codecgen.pipeline": {"codecgen.ir", "codecgen.backends.python", "codecgen.backends.cpp",
                          "codecgen.backends.k8s", "codecgen.backends.wireshark"},
    "codecgen.hostmodel": {"codecgen.ir", "codecgen.naming", "codecgen.pins"},
    "codecgen.engines": {"codecgen.ir", "codecgen.backends.python", "codecgen.backends.cpp", "codecgen.hostmodel",
                         "codecgen.output", "codecgen.pins", "codecgen.errors"},
    "codecgen.verify": {"codecgen.ir", "codecgen.frontend", "codecgen.backends.python", "codecgen.engines",
                        "codecgen.hostmodel", "codecgen.errors"},
    "codecgen.fuzz": {"codecgen.ir", "codecgen.frontend", "codecgen.backends.python", "codecgen.engines",
                      "codecgen.hostmodel", "codecgen.verify", "codecgen.naming", "codecgen.pins", "codecgen.errors"},
    "codecgen.replay": {"codecgen.engines", "codecgen.frontend", "codecgen.errors"},
}


def _imports_by_part():
    import ast

    def part(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3] if len(parts) > 2 and parts[1] == "backends" else parts[:2])

    found: dict = {}
    for file in (ROOT / "codecgen").rglob("*.py"):
        module = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        me = part(module)
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module in ("codecgen", "codecgen.backends"):
                    names = [f"{node.module}.{a.name}" for a in node.names]
                else:
                    names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] in ("codecgen", "construct"):
                    target = "construct" if name.startswith("construct") else part(name)
                    if target != me:
                        found.setdefault(me, set()).add(target)
    return found


def test_parts_import_only_what_the_architecture_allows():
    found = _imports_by_part()
    problems = [f"{part} imports {sorted(found.get(part, set()) - allowed)}"
                for part, allowed in ALLOWED.items() if found.get(part, set()) - allowed]
    assert not problems, "\n".join(problems)
