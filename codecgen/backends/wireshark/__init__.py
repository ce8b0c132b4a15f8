"""Wireshark backend: a Lua dissector (``<name>.lua``) from the IR.

``render(proto)`` reads only the IR: ``emit.WalkerEmitter`` (one ``visit_<Node>`` per wire node)
writes the frame walker and declares a field per leaf, ``roles.RolesEmitter`` the role readers;
``templates/dissector.lua.j2`` only places them.

Names (documented in codecgen/backends/README.md): the dissector registers the protocol name,
or ``<name>_cg`` when Wireshark already has a protocol of that name (thrift, kafka, modbus,
mqtt...): the Lua tries the plain name first, so one script works beside any Wireshark's
built-in dissectors. Every field is ``<proto>.<dotted path>``; a length prefix is
``<path>.length``; the roles are generated fields ``<proto>.request_id``, ``.message_type``,
``.response_status``, ``.key.<routing key>`` (and ``.key.x-codecgen-codec`` on requests, the
codecs' mark ``ir.CODEC_ID_KEY``), ``.header_entry`` (header-map entries, ``key: value``),
``.operation``, ``.response_in``, ``.request_in``, ``.time``. A refused frame carries the
expert info ``<proto>.malformed`` (group Malformed) with the codec's reason.
"""

from __future__ import annotations

from codecgen import ir
from codecgen.backends.k8s import DEFAULT_PORT
from codecgen.backends.templating import environment
from codecgen.backends.wireshark.emit import Fields, WalkerEmitter, lua_str
from codecgen.backends.wireshark.roles import RolesEmitter, from_extension, ranged_paths

__all__ = ["render", "file_name", "magic", "SUFFIX"]

SUFFIX = "_cg"  # appended to the protocol name when Wireshark already has a protocol of that name


def file_name(proto: ir.ProtocolIR) -> str:
    return f"{proto.name}.lua"


def magic(proto: ir.ProtocolIR):
    """(offset, bytes) of the first constant at a fixed offset, for the heuristic dissector;
    None when the frame has none (or only a 0-filled or 1-byte one, too weak to claim traffic)."""
    offset = 0
    node: ir.Node = proto.frame
    fields = list(node.fields)
    while fields:
        f = fields.pop(0)
        if isinstance(f.node, ir.Const):
            value = f.node.value
            return (offset, value) if len(value) >= 2 and any(value) else None
        if isinstance(f.node, ir.Region) and isinstance(f.node.inner, ir.Struct):
            offset += f.node.prefix.width
            fields = list(f.node.inner.fields) + fields
            continue
        if isinstance(f.node, ir.Struct):
            fields = list(f.node.fields) + fields
            continue
        size = f.static_size if f.static_size is not None else _fixed(f.node)
        if size is None:
            return None
        offset += size
    return None


def _fixed(node: ir.Node):
    if isinstance(node, ir.Int):
        return node.type.width
    if isinstance(node, ir.Bits):
        return node.width
    if isinstance(node, ir.Padding):
        return node.size
    return None


def render(proto: ir.ProtocolIR, port: int = DEFAULT_PORT) -> str:
    fields = Fields()
    r = proto.roles
    # The role fields first: their names are fixed; a frame field of the same name gets a "_".
    generated = {
        "request_id": fields.add("request_id", "Request id", "uint64", base="base.DEC"),
        "message_type": fields.add("message_type", "Message type", "string"),
        "response_status": fields.add("response_status", "Response status", "string"),
        "operation": fields.add("operation", "Operation", "string"),
        "header": fields.add("header_entry", "Header entry", "string"),
        "response_in": fields.add("response_in", "Response in", "framenum", frametype="RESPONSE"),
        "request_in": fields.add("request_in", "Request in", "framenum", frametype="REQUEST"),
        "time": fields.add("time", "Response time", "relative_time"),
    }
    for name in ("malformed", "after_refusal"):  # the expert infos' names
        fields.taken.add(name)
    key_fields, unavailable = {}, []
    for rk in r.routing_keys:
        if from_extension(proto, rk.path):
            unavailable.append(rk.key)
        else:
            key_fields[rk.key] = fields.add("key." + rk.key, f"Routing key {rk.key}", "string")
    generated["mark"] = fields.add("key." + ir.CODEC_ID_KEY, "codecgen's codec mark", "string")
    walker = WalkerEmitter(proto, fields, ranged_paths(proto)).emit()
    roles = RolesEmitter(proto).emit(key_fields, generated["header"], generated["mark"])
    found = magic(proto)
    note = ""
    rid_known = r.request_id is not None and not from_extension(proto, r.request_id)
    if r.request_id is not None and not rid_known:
        unavailable.insert(0, "request id (shown as 0; responses paired in order)")
    if unavailable:
        note = ("roles from extension outputs, not dissected here (codecgen decode shows them): "
                + ", ".join(unavailable))
    env = environment(__name__ + ".templates")
    return env.get_template("dissector.lua.j2").render(
        name=proto.name, suffix=SUFFIX, doc=(proto.doc or proto.name).strip().splitlines()[0],
        spec_file=proto.spec_file or "<in-memory spec>", fields=fields.decls, walker=walker,
        roles=roles, g=generated, port=port, has_request_id=rid_known,
        magic=(found[0], lua_str(found[1]), len(found[1])) if found else None,
        note=lua_str(note) if note else "", lua_str=lua_str) + "\n"
