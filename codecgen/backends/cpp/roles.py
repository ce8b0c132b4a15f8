"""C++ backend: statements for roles (decode), mutations (encode) and replies (onError, heartbeat)."""

from __future__ import annotations

from typing import List, Optional

from codecgen import ir
from codecgen.backends.cpp.emit import (
    Expr,
    FrameModel,
    Lines,
    cpp_string,
    ext_member,
    ext_namespace,
    int_ctype,
    member,
)

MT = "MetaProtocolProxy::MessageType"


def _is_wide_unsigned(node) -> bool:
    return (isinstance(node, ir.Int) and node.type.width == 8 and not node.type.signed) or \
        isinstance(node, ir.VarInt)


class RoleEmitter:
    def __init__(self, proto: ir.ProtocolIR, model: FrameModel):
        self.proto = proto
        self.model = model
        self.enum_renderers: List[dict] = []

    # ------------------------------------------------------------------ shared

    def value(self, path: ir.Path) -> str:
        text = self.model.value(path)
        if _is_wide_unsigned(self.model.nodes.get(path)):
            return f'checkSigned64({text}, "{ir.dotted(path)}")'
        return text

    def length(self, path: ir.Path) -> str:
        return self.model.length(path)

    def header_extension(self) -> Optional[ir.Extension]:
        """The extension field that is the header map, if it is one."""
        hm = self.proto.roles.header_map
        node = self.model.nodes.get(hm.array) if hm is not None else None
        return node if isinstance(node, ir.Extension) else None

    @property
    def expr(self) -> Expr:
        return Expr(self.value, self.length)

    def render(self, path: ir.Path, how: ir.Render) -> str:
        text = self.model.value(path)
        if how is ir.Render.TEXT:
            return text
        if how is ir.Render.HEX:
            return f"hexString({text})"
        if how is ir.Render.NAME:
            node = self.model.nodes[path]
            fn = f"{member(path)}Name"
            fn = fn[:1].lower() + "".join(p[:1].upper() + p[1:] for p in fn[1:].split("_"))
            if not any(r["function"] == fn for r in self.enum_renderers):
                self.enum_renderers.append({
                    "function": fn, "field": ir.dotted(path),
                    "cases": [{"value": v, "name": k} for k, v in node.enum]})
            return f"{fn}({text})"
        return f"std::to_string({text})"

    # ------------------------------------------------------------------ decode

    def to_metadata(self) -> str:
        o = Lines(1)
        r = self.proto.roles
        if r.message_type_rules:
            o("// Message type: the first rule that holds; otherwise the framework's preset.")
            o(f"const bool upstream = metadata.getMessageType() == {MT}::Response;")
            keyword = "if"
            for rule in r.message_type_rules:
                o(f"{keyword} ({self.expr.cond(rule.when)}) {{")
                o(f"  metadata.setMessageType({MT}::{rule.type.name});")
                keyword = "} else if"
            o("}")
            o("// The framework asserts that upstream frames are responses: refuse anything else.")
            o(f"if (upstream && metadata.getMessageType() != {MT}::Response &&")
            o(f"    metadata.getMessageType() != {MT}::Error &&")
            o(f"    metadata.getMessageType() != {MT}::Heartbeat) {{")
            o(f'  throw EnvoyException("{self.proto.name}: a request frame arrived from upstream");')
            o("}")
        if r.response_error is not None:
            o(f"// Response status: Error when {ir.expr_text(r.response_error)}.")
            o(f"if ({self.expr.cond(r.response_error)}) {{")
            o("  metadata.setResponseStatus(MetaProtocolProxy::ResponseStatus::Error);")
            o("}")
        if r.request_id is not None:
            o(f"metadata.setRequestId(static_cast<uint64_t>({self.model.value(r.request_id)}));")
        body = self.length(r.body) if r.body is not None else "frame.body_length"
        o(f"metadata.setHeaderSize(frame.frame_size - {body});")
        o(f"metadata.setBodySize({body});")
        if r.operation_name:
            parts = []
            for part in r.operation_name:
                if part.path is None:
                    parts.append(cpp_string(part.text.encode()))
                else:
                    parts.append(self.render(part.path, part.render))
            o(f"metadata.setOperationName({' + '.join(parts)});")
        # Header-map entries first: the spec's declared routing keys win over an entry of the same name.
        hm = r.header_map
        ext = self.header_extension()
        if ext is not None:
            present = self.model.presence(hm.array)
            o(f"// Header map {ir.dotted(hm.array)}: the extension's entries are routable, keys lower-cased.")
            o.open(f"if ({present}) {{" if present else "{")
            o("std::vector<std::pair<std::string, std::string>> entries;")
            o(f"{ext_namespace(ext)}::entries(frame.{ext_member(hm.array)}, entries);")
            o("for (const auto& entry : entries) {")
            o("  publishHeader(metadata, entry.first, entry.second);")
            o("}")
            o.close()
        elif hm is not None:
            o(f"// Header map {ir.dotted(hm.array)}: every entry is routable, keys lower-cased.")
            o(f"for (const auto& entry : frame.{member(hm.array)}) {{")
            o(f"  publishHeader(metadata, entry.{hm.key_field}, entry.{hm.value_field});")
            o("}")
        for key in r.routing_keys:
            present = self.model.presence(key.path)
            output = self.model.outputs.get(key.path)
            if output is not None and output[1].text:  # an empty text output is absent
                empty = f"!{self.model.value(key.path)}.empty()"
                present = f"{present} && {empty}" if present else empty
            elif isinstance(self.model.nodes.get(key.path), ir.Bytes) and not key.publish_empty:
                empty = f"!{self.model.value(key.path)}.empty()"  # an empty string publishes no key
                present = f"({present}) && {empty}" if present else empty
            line = f'metadata.putString("{key.key}", {self.render(key.path, key.render)});'
            if present:
                o(f"if ({present}) {{")
                o("  " + line)
                o("}")
            else:
                o(line)
        return o.text()

    # ------------------------------------------------------------------ encode

    @property
    def mutable(self) -> bool:
        r = self.proto.roles
        return r.header_map is not None or bool(r.fixed_headers)

    def apply_mutation(self) -> str:
        o = Lines(2)
        r = self.proto.roles
        for fh in r.fixed_headers:
            node = self.model.nodes[fh.path]
            target = f"frame.{member(fh.path)}"
            o(f'if (key == "{fh.key}") {{')
            if isinstance(node, ir.Bytes):
                o(f"  {target} = value;")
            else:
                ctype = int_ctype(node.type.width, node.type.signed)
                lo, hi = node.type.min_value, node.type.max_value
                o(f"  {target} = static_cast<{ctype}>(")
                o(f"      parseDecimal(value, {_lit(lo)}, {_lit(hi)}, static_cast<int64_t>({target})));")
            o("  continue;")
            o("}")
        hm = r.header_map
        if self.header_extension() is not None:
            o("extension_pairs.emplace_back(key, value);")
        elif hm is not None:
            entries = f"frame.{member(hm.array)}"
            o("const std::string lower_key = asciiLower(key);")
            o("bool found = false;")
            o(f"for (auto& entry : {entries}) {{")
            o(f"  if (asciiLower(entry.{hm.key_field}) == lower_key) {{")
            o(f"    entry.{hm.value_field} = value;")
            o("    found = true;")
            o("  }")
            o("}")
            o("if (!found) {")
            o(f"  auto& entry = {entries}.emplace_back();")
            o(f"  entry.{hm.key_field} = key;")
            o(f"  entry.{hm.value_field} = value;")
            o("}")
        return o.text()

    def mutation_prologue(self) -> str:
        if self.header_extension() is None:
            return ""
        return "  // For the extension's mutate(): the pairs no fixed header took, sorted by key.\n" \
               "  std::vector<std::pair<std::string, std::string>> extension_pairs;"

    def mutation_epilogue(self) -> str:
        ext = self.header_extension()
        if ext is None:
            return ""
        o = Lines(1)
        path = self.proto.roles.header_map.array
        ns, m = ext_namespace(ext), ext_member(path)
        present = self.model.presence(path)
        cond = f"frame.{m}_state == ExtState::Parsed" + (f" && {present}" if present else "")
        o(f"if ({cond} && {ns}::mutate(frame.{m}, extension_pairs)) {{")
        o(f"  frame.{m}_state = ExtState::Mutated;")
        o(f"  frame.{m}_length = {ns}::size(frame.{m});")
        o("}")
        return o.text()

    # ------------------------------------------------------------------ replies

    def reply(self, reply: Optional[ir.Reply], depth: int = 1) -> str:
        o = Lines(depth)
        if reply is None:
            return ""
        for path, value in reply.values:
            node = self.model.nodes[path]
            if isinstance(node, ir.Extension):
                m = ext_member(path)
                if value.kind is ir.ValueKind.ERROR_MESSAGE:
                    o(f"frame.{m}_literal = {ext_namespace(node)}::errorValue(  // {ir.dotted(path)}")
                    o("    error.message, static_cast<int64_t>(error.type), metadata.getRequestId());")
                else:
                    o(f"frame.{m}_literal = {cpp_string(value.literal)};  // {ir.dotted(path)}")
                o(f"frame.{m}_length = frame.{m}_literal.size();")
                continue
            is_body = path == self.model.body
            target = "frame.body" if is_body else f"frame.{member(path)}"
            comment = f"// {ir.dotted(path)}"
            if value.kind is ir.ValueKind.LITERAL:
                if isinstance(node, ir.Bytes):
                    o(f"{target} = {cpp_string(value.literal)};  {comment}")
                else:
                    o(f"{target} = {_lit(value.literal)};  {comment}")
            elif value.kind is ir.ValueKind.REQUEST_ID:
                ctype, bits, _ = _int_shape(node)
                o(f"{target} = wrapInt<{ctype}, {bits}>(metadata.getRequestId());  {comment}")
            elif value.kind is ir.ValueKind.ERROR_MESSAGE:
                o(f"{target} = error.message;  {comment}")
            elif value.kind is ir.ValueKind.ERROR_CODE:
                o(f"{comment}: the protocol's status for each ErrorType")
                o("switch (error.type) {")
                for error_type, code in value.codes:
                    o(f"case MetaProtocolProxy::ErrorType::{error_type.name}:")
                    o(f"  {target} = {_lit(code)};")
                    o("  break;")
                o("}")
            elif value.kind is ir.ValueKind.METADATA:
                text = f'metadata.getString("{value.key}")'
                if isinstance(node, ir.Bytes):
                    o(f"{target} = {text};  {comment}")
                    if value.literal:
                        o(f"if ({target}.empty()) {{")
                        o(f"  {target} = {cpp_string(value.literal)};")
                        o("}")
                else:
                    ctype, _, _ = _int_shape(node)
                    lo, hi = _bounds(node)
                    o(f"{target} = static_cast<{ctype}>(  {comment}")
                    o(f"    parseDecimal({text}, {_lit(lo)}, {_lit(hi)}, {_lit(value.literal)}));")
            if is_body:
                o("frame.body_length = frame.body.size();")
        return o.text()

    def uses_error(self, reply: Optional[ir.Reply]) -> bool:
        return reply is not None and any(
            v.kind in (ir.ValueKind.ERROR_CODE, ir.ValueKind.ERROR_MESSAGE) for _, v in reply.values)

    def uses_metadata(self, reply: Optional[ir.Reply]) -> bool:
        """The request id or published strings, or an extension's errorValue (which gets the id)."""
        return reply is not None and any(
            v.kind in (ir.ValueKind.REQUEST_ID, ir.ValueKind.METADATA)
            or (v.kind is ir.ValueKind.ERROR_MESSAGE and isinstance(self.model.nodes[p], ir.Extension))
            for p, v in reply.values)


def _int_shape(node):
    """(C++ type, bits on the wire, signed) of an integer-valued node."""
    if isinstance(node, ir.Int):
        return int_ctype(node.type.width, node.type.signed), node.type.bits, node.type.signed
    if isinstance(node, ir.BitField):
        ctype = "uint8_t" if node.width <= 8 else "uint16_t" if node.width <= 16 else \
            "uint32_t" if node.width <= 32 else "uint64_t"
        return ctype, node.width, False
    if isinstance(node, ir.ZigZag):
        return "int64_t", 64, True
    return "uint64_t", 64, False


def _bounds(node):
    if isinstance(node, ir.Int):
        return node.type.min_value, node.type.max_value
    if isinstance(node, ir.BitField):
        return 0, (1 << node.width) - 1
    if isinstance(node, ir.ZigZag):
        return -(1 << 63), (1 << 63) - 1
    return 0, (1 << 63) - 1


def _lit(value: int) -> str:
    if value == -(1 << 63):
        return "std::numeric_limits<int64_t>::min()"
    if value > (1 << 63) - 1:
        return f"{value}ULL"
    return f"int64_t{{{value}}}" if value < 0 else str(value)
