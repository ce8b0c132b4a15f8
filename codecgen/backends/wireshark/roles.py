"""IR roles -> Lua that reads them from the walker's tables: request id, message type,
response status, routing keys (rendered exactly as the codecs render them for ``putString``),
header-map entries and the operation name.

A role on an extension's output (a Hessian2 interface, a THeader info header) has no value in
Lua: the extension's bytes are shown, not dissected. Such keys are listed in ``unavailable``
and the dissector says so in the tree; a condition over an output reads 0, and so does a
request id that is an output (Baidu std, Tars, tRPC).

Keys follow the codecs' rule: a key whose text is empty is not published unless the spec says
``publish_empty``; every request also carries codecgen's mark ``ir.CODEC_ID_KEY`` = the codec
name, which the generated codecs add (it is not on the wire).
"""

from __future__ import annotations

from codecgen import ir
from codecgen.backends.wireshark.emit import Code, Exprs, key, lua_str


def leaf(proto: ir.ProtocolIR, path: ir.Path):
    """The node at ``path``: a field's node, a bit field, or None (extension output, absent)."""
    found = ir.find_field(proto.frame, path)
    if found is not None:
        return found.node
    parent = ir.find_field(proto.frame, path[:-1]) if len(path) > 1 else None
    if parent is not None and isinstance(parent.node, ir.Bits):
        return next((b for b in parent.node.fields if b.name == path[-1]), None)
    return None


def from_extension(proto: ir.ProtocolIR, path: ir.Path) -> bool:
    return ir.find_output(proto.frame, path) is not None


def ranged_paths(proto: ir.ProtocolIR) -> set:
    """Paths whose byte ranges the roles read: text and 64-bit values."""
    r = proto.roles
    paths = [k.path for k in r.routing_keys] + [p.path for p in r.operation_name if p.path]
    if r.request_id:
        paths.append(r.request_id)
    out = set(paths)
    if r.header_map is not None and r.header_map.key_field:
        out.add(r.header_map.array + (r.header_map.key_field,))
        out.add(r.header_map.array + (r.header_map.value_field,))
    return out


class RolesEmitter:
    def __init__(self, proto: ir.ProtocolIR):
        self.proto = proto
        self.expr = Exprs()
        self.code = Code()

    def render(self, path: ir.Path, how: ir.Render, var: str) -> None:
        """Lua setting ``var`` to the key's string, or leaving it nil when the field is absent."""
        c = self.code
        node = leaf(self.proto, path)
        k = key(path)
        if isinstance(node, (ir.Bytes, ir.Const)) and how in (ir.Render.TEXT, ir.Render.HEX):
            fn = "hex" if how is ir.Render.HEX else ""
            size = len(node.value) if isinstance(node, ir.Const) else f"v[{k}]"
            c(f"if r[{k}] then {var} = {fn}(tvb:raw(r[{k}], {size})) end")
            return
        if isinstance(node, ir.Int) and node.type.width == 8:
            le = "le_" if node.type.endian is ir.Endian.LITTLE else ""
            kind = "int64" if node.type.signed else "uint64"
            c(f"if r[{k}] then {var} = tostring(tvb(r[{k}], 8):{le}{kind}()) end")
        else:
            c(f"if v[{k}] then {var} = string.format(\"%d\", v[{k}]) end")
        enum = getattr(node, "enum", ()) or ()
        if how is ir.Render.NAME and enum:
            names = ", ".join(f"[\"{value}\"] = {lua_str(name)}" for name, value in enum)
            c(f"if {var} then {var} = ({{{names}}})[{var}] or {var} end")

    def emit(self, key_fields: dict, header_field: int | None, mark_field: int) -> str:
        """``roles(tvb, v, r, h, d)`` -> message type, request id (UInt64), error (bool),
        keys {{name, value, field index}...}, operation name (or nil)."""
        c, r = self.code, self.proto.roles
        c("local mt")
        first = True
        for rule in r.message_type_rules:
            c(f"{'if' if first else 'elseif'} {self.expr(rule.when)} ~= 0 then mt = \"{rule.type.name}\"")
            first = False
        c("else mt = d == 0 and \"Request\" or \"Response\"" if not first
          else "mt = d == 0 and \"Request\" or \"Response\"")
        if not first:
            c("end")
        self.request_id(r.request_id)
        c(f"local err = {self.expr(r.response_error) + ' ~= 0' if r.response_error else 'false'}")
        c("local keys = {}")
        if r.header_map is not None and r.header_map.key_field:
            c("for _, e in ipairs(h) do")
            c("  local k = string.lower(tvb:raw(e[1], e[2]))")
            reserved = ", ".join(f"[{lua_str(k)}] = true" for k in ir.RESERVED_KEYS)
            c(f"  if not ({{{reserved}}})[k] and string.sub(k, 1, {len(ir.RESERVED_PREFIX)}) ~= "
              f"{lua_str(ir.RESERVED_PREFIX)} then")
            c(f"    keys[#keys + 1] = {{k, tvb:raw(e[3], e[4]), {header_field}}}")
            c("  end")
            c("end")
        for rk in r.routing_keys:
            if rk.key not in key_fields:
                continue
            c("do")
            c.depth += 1
            c("local s")
            self.render(rk.path, rk.render, "s")
            present = "s" if rk.publish_empty else "s and s ~= \"\""  # empty: no key (the codecs' rule)
            c(f"if {present} then keys[#keys + 1] = {{{lua_str(rk.key)}, s, {key_fields[rk.key]}}} end")
            c.depth -= 1
            c("end")
        mark = f"{{{lua_str(ir.CODEC_ID_KEY)}, {lua_str(self.proto.codec_name)}, {mark_field}}}"
        c(f"if d == 0 then keys[#keys + 1] = {mark} end  -- codecgen's mark, as every codec adds it")
        if self.operation_available():
            c("local op = \"\"")
            for part in r.operation_name:
                if part.path is None:
                    c(f"op = op .. {lua_str(part.text)}")
                    continue
                c("do")
                c.depth += 1
                c("local s")
                self.render(part.path, part.render, "s")
                c("op = op .. (s or \"\")")
                c.depth -= 1
                c("end")
        else:
            c("local op = nil")
        c("return mt, rid, err, keys, op")
        return c.text()

    def operation_available(self) -> bool:
        parts = self.proto.roles.operation_name
        return bool(parts) and not any(p.path and from_extension(self.proto, p.path) for p in parts)

    def request_id(self, path) -> None:
        c = self.code
        if path is None:
            c("local rid = UInt64(0)")
            return
        node, k = leaf(self.proto, path), key(path)
        if isinstance(node, ir.Int) and node.type.width == 8:
            le = "le_" if node.type.endian is ir.Endian.LITTLE else ""
            c(f"local rid = r[{k}] and tvb(r[{k}], 8):{le}uint64() or UInt64(0)")
        else:
            c(f"local rid = U(v[{k}] or 0)")
