"""Frontend: spec file -> ``Protocol`` -> validated ``ProtocolIR``.

Passes, in order (each raises ``SpecError`` naming the field path):
1. ``load_spec``: import the spec module, find ``PROTOCOL``.
2. ``Lowerer.lower_frame``: construct tree -> wire nodes.
3. ``layout``: static offsets and sizes on the fields (sizes by ``ir.facts.static_size``).
4. ``check_frame``: framing rules (the frame's end is knowable, derived
   expressions resolve, the body is last, header map shape).
5. ``lower_roles``: roles -> ``ir.Roles``, every path checked against the tree.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Optional

from codecgen import ir, naming
from codecgen.builtins import check_builtin
from codecgen.errors import SpecError, UserError
from codecgen.frontend.lower import Lowerer
from codecgen.frontend.roles import lower_roles
from codecgen.frontend.layout import check_frame, layout
from codecgen.spec import Protocol


def load_spec(path: str | FsPath) -> Protocol:
    """Import a spec file and return its ``PROTOCOL``."""
    file = FsPath(path)
    if not file.is_file():
        raise UserError(f"{path}: no such spec file")
    mod_name = f"codecgen_spec_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SpecError:
        raise
    except Exception as exc:  # the author's module failed to import
        tb = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(tb) if f.filename == str(file)), None)
        where = f"{path}:{line}" if line else str(path)
        raise UserError(f"{where}: {type(exc).__name__}: {exc}") from None
    protocol = getattr(module, "PROTOCOL", None)
    if not isinstance(protocol, Protocol):
        raise UserError(f"{path}: the module must define PROTOCOL = codecgen.Protocol(...)")
    return protocol


def lower(protocol: Protocol, spec_file: str = "", target: Optional[str] = None) -> ir.ProtocolIR:
    """Validate a ``Protocol`` and lower it to the IR; built-in codec names are those of
    ``target`` (the pins' default target when None)."""
    name = protocol.name
    problem = naming.check_token(name)
    if problem:
        raise SpecError(str(name), "name", problem)
    replaces = check_builtin(name, protocol.replaces_builtin, target)
    if not isinstance(protocol.max_frame_size, int) or not 16 <= protocol.max_frame_size <= (1 << 31) - 1:
        raise SpecError(name, "max_frame_size", "must be an integer between 16 and 2^31-1")
    if isinstance(protocol.max_array_count, bool) or not isinstance(protocol.max_array_count, int) \
            or not 1 <= protocol.max_array_count <= 1_000_000:
        raise SpecError(name, "max_array_count", "must be an integer between 1 and 1000000")
    lowerer = Lowerer(name, protocol.max_array_count)
    frame = lowerer.lower_frame(protocol.frame)
    frame = layout(frame)
    check_frame(name, frame)
    # Extension outputs exist once the whole frame is parsed: roles may read them, the frame not.
    lowerer.scope.defined.update(lowerer.ext_outputs)
    roles = lower_roles(protocol, frame, lowerer.scope)
    min_size = sum(f.static_size or 0 for f in frame.fields if f.static_offset is not None)
    return ir.ProtocolIR(
        name=name,
        camel=naming.camel(name),
        codec_name=naming.codec_name(name),
        frame=frame,
        roles=roles,
        max_frame_size=protocol.max_frame_size,
        min_frame_size=min_size,
        spec_file=spec_file,
        doc=(protocol.doc or "").strip(),
        replaces_builtin=replaces,
    )


def load(path: str | FsPath, target: Optional[str] = None) -> ir.ProtocolIR:
    return lower(load_spec(path), spec_file=str(path), target=target)
