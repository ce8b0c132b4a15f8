"""Python backend: the standalone reference codec module, and loading it in-process.

``render(proto)`` returns the text of ``python/<name>_codec.py``; ``load(proto)``
executes that same text, so the in-process oracle and the shipped module are
one implementation.
"""

from __future__ import annotations

import ast
import importlib.metadata
import types
from functools import lru_cache

from codecgen import ir, naming
from codecgen.errors import UserError
from codecgen.ext.sources import BASE_SOURCE, embeddable_text
from codecgen.ir.walk import walk_nodes
from codecgen.backends.python.emit import (
    ConstructEmitter,
    FreshEmitter,
    RolesEmitter,
    WalkerEmitter,
)
from codecgen.backends.templating import environment
from codecgen.version import __version__


def _names(path: ir.Path, proto: ir.ProtocolIR) -> str:
    node = node_at(proto, path)
    enum = getattr(node, "enum", ())
    return repr({v: k for k, v in enum}) if enum else "None"


def node_at(proto: ir.ProtocolIR, path: ir.Path):
    found = ir.find_output(proto.frame, path)
    if found is not None:
        return found[1]
    for f in ir.iter_fields(proto.frame):
        if f.path == path:
            return f.node
        if isinstance(f.node, ir.Bits) and f.path == path[:-1]:
            for b in f.node.fields:
                if b.name == path[-1]:
                    return b
    raise KeyError(path)


def int_bounds(node) -> tuple[int, int, int, bool]:
    """(bits, lo, hi, signed) of an integer-valued node."""
    if isinstance(node, ir.Int):
        return node.type.bits, node.type.min_value, node.type.max_value, node.type.signed
    if isinstance(node, ir.BitField):
        return node.width, 0, (1 << node.width) - 1, False
    if isinstance(node, ir.ZigZag):
        return 64, -(1 << 63), (1 << 63) - 1, True
    return 64, 0, (1 << 64) - 1, False


def _reply(proto: ir.ProtocolIR, reply) -> str:
    if reply is None:
        return "None"
    rows = []
    for path, value in reply.values:
        node = node_at(proto, path)
        kind = value.kind.value
        if value.kind is ir.ValueKind.REQUEST_ID:
            bits, _, _, signed = int_bounds(node)
            rows.append((path, kind, None, (bits, signed)))
        elif value.kind is ir.ValueKind.ERROR_CODE:
            rows.append((path, kind, tuple(code for _, code in value.codes), None))
        elif isinstance(node, ir.Extension) and value.kind is ir.ValueKind.ERROR_MESSAGE:
            rows.append((path, "extension_error_message", None, node.kind))
        elif value.kind is ir.ValueKind.METADATA:
            if isinstance(node, ir.Bytes):
                rows.append((path, kind, value.literal, (value.key.encode(), None, None)))
            else:
                _, lo, hi, _ = int_bounds(node)
                rows.append((path, kind, value.literal, (value.key.encode(), lo, hi)))
        else:
            rows.append((path, kind, value.literal, None))
    return repr(tuple(rows))


def _fixed_headers(proto: ir.ProtocolIR) -> str:
    out = {}
    for fh in proto.roles.fixed_headers:
        node = node_at(proto, fh.path)
        if isinstance(node, ir.Bytes):
            out[fh.key.encode()] = (fh.path, False, None, None)
        else:
            _, lo, hi, _ = int_bounds(node)
            out[fh.key.encode()] = (fh.path, True, lo, hi)
    return repr(out)


def _extension_sources(proto: ir.ProtocolIR) -> list[dict]:
    """The Python sources to embed, each once, the extension runtime (base.py) first."""
    files: list[str] = []
    for f in ir.extensions(proto.frame):
        for source in (BASE_SOURCE,) + f.node.python_sources:
            if source not in files:
                files.append(source)
    return [{"name": _display(source), "text": embeddable_text(source)} for source in files]


def _display(source: str) -> str:
    parts = source.replace("\\", "/").split("/")
    return "/".join(parts[parts.index("codecgen"):]) if "codecgen" in parts else parts[-1]


def _check_names(text: str, sources: list[dict]) -> None:
    """Embedded sources share the module's namespace: refuse a name defined twice at top level."""
    if not sources:
        return
    seen: dict[str, int] = {}
    for node in ast.parse(text).body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        for name in names:
            if name in seen and seen[name] != node.lineno:
                raise UserError(f"python backend: the name {name!r} is defined by an embedded extension "
                                "source and by the generated module (or twice); rename it in the extension")
            seen[name] = node.lineno


def render(proto: ir.ProtocolIR) -> str:
    roles = proto.roles
    exprs = RolesEmitter(proto)
    fresh = FreshEmitter(proto).emit_fresh()
    element = (FreshEmitter(proto).emit_element(roles.header_map.array)
               if roles.header_map and roles.header_map.key_field else "    return Container()")
    sources = _extension_sources(proto)
    context = {
        "p": proto,
        "version": __version__,
        "construct_version": importlib.metadata.version("construct"),
        "drop_keys": repr(tuple(roles.drop_keys)),
        "drop_prefixes": repr(tuple(roles.drop_prefixes)),
        "reserved_keys": repr(tuple(k.encode() for k in ir.RESERVED_KEYS)),
        "reserved_prefix": repr(ir.RESERVED_PREFIX.encode()),
        "codec_id": (repr(ir.CODEC_ID_KEY.encode()), repr(proto.codec_name.encode())),
        "construct_source": ConstructEmitter().struct(proto.frame, (), 0),
        "zigzag": any(isinstance(node, ir.ZigZag) for node in walk_nodes(proto.frame)),
        "walker": WalkerEmitter(proto).emit(),
        "rules": [{"cond": exprs.value_expr(r.when), "type": r.type.name} for r in roles.message_type_rules],
        "response_error": exprs.value_expr(roles.response_error) if roles.response_error else "0",
        "request_id": repr(roles.request_id) if roles.request_id else "",
        "request_id_get": exprs.get(roles.request_id, "0") if roles.request_id else "",
        "routing_keys": [{"key": k.key, "path": repr(k.path), "getter": exprs.get(k.path, "None"),
                          "render": k.render.value, "names": _names(k.path, proto), "publish_empty": k.publish_empty}
                         for k in roles.routing_keys],
        "header_map": ({"array": repr(roles.header_map.array), "key": roles.header_map.key_field,
                        "value": roles.header_map.value_field,
                        "extension": _extension_class(proto, roles.header_map.array)}
                       if roles.header_map else None),
        "extension_sources": sources,
        "extensions": sorted({(f.node.kind, naming.camel(f.node.kind)) for f in ir.extensions(proto.frame)}),
        "operation": [{"text": repr(p.text.encode()), "path": repr(p.path) if p.path else "",
                       "getter": exprs.get(p.path, "None") if p.path else "",
                       "render": p.render.value, "names": _names(p.path, proto) if p.path else "None"}
                      for p in roles.operation_name],
        "body": repr(roles.body) if roles.body else "",
        "body_get": exprs.get(roles.body, "b''") if roles.body else "",
        "fresh": fresh,
        "element": element,
        "error_reply": _reply(proto, roles.error_reply),
        "heartbeat_reply": _reply(proto, roles.heartbeat_reply),
        "fixed_headers": _fixed_headers(proto),
        "mutable": repr(bool(roles.header_map or roles.fixed_headers)),
    }
    text = environment(__name__).get_template("codec.py.j2").render(**context) + "\n"
    _check_names(text, sources)
    return text


def _extension_class(proto: ir.ProtocolIR, path: ir.Path) -> str:
    node = proto.field(path).node
    return naming.camel(node.kind) if isinstance(node, ir.Extension) else ""


@lru_cache(maxsize=64)
def _load_text(name: str, text: str) -> types.ModuleType:
    module = types.ModuleType(f"{name}_codec")
    module.__file__ = f"<codecgen:{name}_codec.py>"
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


def load(proto: ir.ProtocolIR) -> types.ModuleType:
    """The reference codec module for ``proto``, executed in-process."""
    return _load_text(proto.name, render(proto))


# The generated module's helpers other parts need, named here (its owner) so that no other part
# reaches into the module's private names.


def fresh_container(module: types.ModuleType, values: dict, direction: int):
    """A container for a new frame of ``module``: ``values`` maps field paths to values, the
    rest take their defaults (``direction`` 0 request, 1 response)."""
    return module._fresh(values, direction)


def fit_int(module: types.ModuleType, value: int, bits: int, signed: bool) -> int:
    """``value`` truncated to a field of ``bits`` bits (two's complement), as ``module`` does."""
    return module._fit(value, bits, signed)
