"""Lower and check extension fields (``codecgen.ext.base.ExtensionField`` subclasses).

Everything an extension declares is checked here, with the field path in the message, so
that backends only copy files and call hooks: the kind and class name, the source files
(present, the Python ones importing only the standard library, construct and earlier
embedded files), parameters (plain earlier integer fields), outputs and capabilities.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path as FsPath
from typing import Iterable

from codecgen import ir, naming
from codecgen.ext.sources import EMBED_MARKER

KIND_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
OUTPUT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
CPP_SUFFIXES = (".h", ".cc")


def is_extension(con) -> bool:
    from codecgen.ext.base import ExtensionField

    return isinstance(con, ExtensionField)


def lower_extension(lowerer, con, path: ir.Path, ctx: ir.Path) -> ir.Extension:
    scope = lowerer.scope
    cls = type(con)
    kind = cls.KIND

    def fail(reason: str):
        return scope.fail(path, f"extension {cls.__name__}: {reason}")

    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise fail(f"KIND {kind!r} must be snake_case ([a-z][a-z0-9]* words joined by '_')")
    if cls.__name__ != naming.camel(kind):
        raise fail(f"the class must be named {naming.camel(kind)!r} after its KIND {kind!r}")
    try:
        home = FsPath(inspect.getfile(cls)).resolve().parent
    except (TypeError, OSError):
        raise fail("its module has no file (define extensions in an importable .py file)") from None
    python_sources = _files(cls.PYTHON_SOURCES, home, (".py",), "PYTHON_SOURCES", fail)
    if str(FsPath(inspect.getfile(cls)).resolve()) not in python_sources:
        raise fail("PYTHON_SOURCES must list the file that defines the class")
    for source in python_sources:
        problem = check_python_source(source)
        if problem:
            raise fail(problem)
    cpp_sources = _files(cls.CPP_SOURCES, home, CPP_SUFFIXES, "CPP_SOURCES", fail)
    if not any(s.endswith(".h") for s in cpp_sources):
        raise fail("CPP_SOURCES must include a header (.h) declaring the C++ functions")
    outputs = []
    for name, what in dict(cls.OUTPUTS).items():
        if not isinstance(name, str) or not OUTPUT_RE.match(name):
            raise fail(f"output {name!r} must be a lower-case identifier")
        if what not in ("int", "text"):
            raise fail(f"output {name!r} must be 'int' or 'text', not {what!r}")
        outputs.append(ir.ExtOutput(name=name, text=what == "text"))
    params = []
    for name in cls.PARAMS:
        if not isinstance(name, str) or not OUTPUT_RE.match(name):
            raise fail(f"parameter {name!r} must be a lower-case identifier")
        expr = lowerer.expr(con.params[name], path, ctx, what=f"parameter {name}")
        if not isinstance(expr, ir.Ref):
            raise fail(f"parameter {name} must be an earlier integer field (this.<field>) or DIRECTION")
        target = scope.defined.get(expr.path)
        if isinstance(target, ir.VarInt) or (isinstance(target, ir.Int) and target.type.width == 8
                                              and not target.type.signed):
            raise fail(f"parameter {name} reads {ir.dotted(expr.path)!r}, an unsigned 64-bit field; "
                       "parameters are small integers")
        params.append((name, expr))
    size = None if con.size is None else lowerer.size_expr(con.size, path, ctx)
    return ir.Extension(
        kind=kind,
        python_sources=tuple(python_sources),
        cpp_sources=tuple(cpp_sources),
        size=size,
        params=tuple(params),
        outputs=tuple(outputs),
        header_map=bool(cls.HEADER_MAP),
        error_message=bool(cls.ERROR_MESSAGE),
    )


def _files(names: Iterable[str], home: FsPath, suffixes, attribute: str, fail) -> list[str]:
    if isinstance(names, str) or not names:
        raise fail(f"{attribute} must be a non-empty tuple of file names")
    out = []
    for name in names:
        file = (home / name).resolve()
        if file.suffix not in suffixes:
            raise fail(f"{attribute}: {name!r} must end in {' or '.join(suffixes)}")
        if not file.is_file():
            raise fail(f"{attribute}: {name!r} not found (looked at {file})")
        if str(file) not in out:
            out.append(str(file))
    return out


def check_python_source(path: str) -> str | None:
    """Why a Python source cannot be embedded into a standalone module, or None."""
    text = FsPath(path).read_text()
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        return f"{FsPath(path).name}:{exc.lineno}: {exc.msg}"
    lines = text.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        where = f"{FsPath(path).name}:{node.lineno}"
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        if isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__"):
            return f"{where}: relative and __future__ imports cannot be embedded"
        if lines[node.end_lineno - 1].rstrip().endswith(EMBED_MARKER):
            if node.lineno != node.end_lineno or node.col_offset != 0:
                return f"{where}: an embedded import must be one top-level line"
            if not all(m.startswith("codecgen.ext.") for m in modules):
                return f"{where}: only codecgen.ext modules can be imported as embedded"
            continue
        for module in modules:
            root = module.split(".")[0]
            if root != "construct" and root not in sys.stdlib_module_names:
                return (f"{where}: imports {module!r}; embedded sources may import only the standard "
                        f"library, construct, and earlier sources (a line ending in {EMBED_MARKER!r})")
    return None


def check_extensions(protocol: str, frame: ir.Struct, fail) -> None:
    """Checks across extension fields: one declaration per kind, distinct C++ file names."""
    kinds: dict[str, ir.Extension] = {}
    files: dict[str, str] = {}
    generated = set(naming.cpp_files(protocol))
    for f in ir.extensions(frame):
        ext = f.node
        known = kinds.setdefault(ext.kind, ext)
        if (known.python_sources, known.cpp_sources, known.outputs) != \
                (ext.python_sources, ext.cpp_sources, ext.outputs):
            raise fail(f.path, f"extension kind {ext.kind!r} is declared twice, differently")
        for source in ext.cpp_sources:
            name = FsPath(source).name
            if name in generated:
                raise fail(f.path, f"extension file {name!r} has the name of a generated file")
            if files.setdefault(name, source) != source:
                raise fail(f.path, f"two extension files are named {name!r} ({files[name]}, {source})")
