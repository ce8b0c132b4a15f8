"""A readable summary of a ProtocolIR, printed by ``codecgen check``."""

from __future__ import annotations

from codecgen import ir
from codecgen.ir.walk import NodeVisitor, children


class _NodeText(NodeVisitor):
    """One line describing a node."""

    def visit_Int(self, node):
        t = node.type
        text = f"{'i' if t.signed else 'u'}{t.bits}{'' if t.width == 1 else ('be' if t.endian is ir.Endian.BIG else 'le')}"
        if node.enum:
            text += " enum{" + ", ".join(f"{k}={v}" for k, v in node.enum) + "}"
        if node.flags:
            text += " flags{" + ", ".join(f"{k}=0x{v:x}" for k, v in node.flags) + "}"
        if node.derived is not None:
            text += f" = {ir.expr_text(node.derived)} (derived)"
        return text

    def visit_Bits(self, node):
        return f"bits[{node.width * 8}] " + " ".join(
            f"{b.name}:{'flag' if b.is_flag else b.width}" for b in node.fields)

    def visit_Const(self, node):
        return f"const 0x{node.value.hex()}"

    def visit_Padding(self, node):
        return f"padding {node.size}"

    def visit_VarInt(self, node):
        return "varint" if node.max_bytes == 10 else f"varint of at most {node.max_bytes} bytes"

    def visit_ZigZag(self, node):
        return "zigzag varint (signed)"

    def visit_Bytes(self, node):
        kind = "string" if node.encoding else "bytes"
        if node.prefix is not None:
            return f"{kind} with u{node.prefix.bits} length"
        if node.prefix_varint:
            return f"{kind} with varint length"
        if node.size is None:
            return f"{kind} to the end of the region"
        return f"{kind}[{ir.expr_text(node.size)}]"

    def visit_Struct(self, node):
        return "struct"

    def visit_Array(self, node):
        count = f"u{node.prefix.bits} count" if node.prefix else ir.expr_text(node.count)
        return f"array[{count}, max {node.max_count}]"

    def visit_Region(self, node):
        return f"region with u{node.prefix.bits} length{' (counts itself)' if node.include_length else ''}"

    def visit_If(self, node):
        return f"if {ir.expr_text(node.cond)}"

    def visit_Switch(self, node):
        return f"switch {ir.expr_text(node.key)} cases {[v for v, _ in node.cases]}"

    def visit_Extension(self, node):
        size = "to the end of the region" if node.size is None else f"[{ir.expr_text(node.size)}]"
        params = ", ".join(f"{n}={ir.expr_text(e)}" for n, e in node.params)
        outputs = ", ".join(f"{o.name}:{'text' if o.text else 'int'}" for o in node.outputs)
        hooks = [h for h, on in (("header map", node.header_map), ("error message", node.error_message)) if on]
        return (f"extension {node.kind}{size}({params}) outputs {{{outputs}}}"
                + (f" hooks {{{', '.join(hooks)}}}" if hooks else ""))


_node_text = _NodeText().visit


def _tree(node: ir.Node, depth: int, lines: list[str]) -> None:
    """Fields one per line; Switch cases labelled; other containers are transparent."""
    if isinstance(node, ir.Switch):
        for value, case in node.cases:
            lines.append("  " * depth + f"case {value}:")
            _tree(case, depth + 1, lines)
        if node.default is not None:
            lines.append("  " * depth + "default:")
            _tree(node.default, depth + 1, lines)
        return
    if not isinstance(node, ir.Struct):
        for child in children(node):
            _tree(child, depth, lines)
        return
    for f in node.fields:
        offset = f"@{f.static_offset}" if f.static_offset is not None else "@?"
        size = f"{f.static_size}B" if f.static_size is not None else "var"
        lines.append("  " * depth + f"{f.name:<14} {offset:>5} {size:>5}  {_node_text(f.node)}")
        _tree(f.node, depth + 1, lines)


def summarize(proto: ir.ProtocolIR) -> str:
    r = proto.roles
    lines = [
        f"protocol   {proto.name}   codec {proto.codec_name}   max frame {proto.max_frame_size} bytes",
        "frame:",
    ]
    _tree(proto.frame, 1, lines)
    if proto.replaces_builtin:
        lines.append(f"replaces   meta-protocol-proxy's built-in {proto.codec_name} (images link this codec "
                     f"in its place)")
    lines.append("roles:")
    lines.append(f"  request id      {ir.dotted(r.request_id) if r.request_id else '(none: 0)'}")
    if r.message_type_rules:
        for rule in r.message_type_rules:
            lines.append(f"  message type    {rule.type.name:<10} when {ir.expr_text(rule.when)}")
    lines.append("  message type    otherwise by direction (framework preset)")
    if r.response_error is not None:
        lines.append(f"  response error  when {ir.expr_text(r.response_error)}")
    for k in r.routing_keys:
        empty = ", empty published as \"\"" if k.publish_empty else ""
        lines.append(f"  routing key     {k.key} = {ir.dotted(k.path)} ({k.render.value}{empty})")
    if r.operation_name:
        name = "".join(p.text if p.path is None else "{" + ir.dotted(p.path) + "}" for p in r.operation_name)
        lines.append(f"  operation name  {name}")
    if r.body:
        lines.append(f"  body            {ir.dotted(r.body)}")
    if r.header_map and not r.header_map.key_field:
        lines.append(f"  header map      {ir.dotted(r.header_map.array)} (extension entries)")
    elif r.header_map:
        lines.append(f"  header map      {ir.dotted(r.header_map.array)} "
                     f"({r.header_map.key_field} -> {r.header_map.value_field})")
    for fh in r.fixed_headers:
        lines.append(f"  fixed header    {fh.key} -> {ir.dotted(fh.path)}")
    lines.append(f"  mutation drops  {', '.join(r.drop_keys)}; prefixes {', '.join(r.drop_prefixes)}")
    for title, reply in (("error reply", r.error_reply), ("heartbeat reply", r.heartbeat_reply)):
        if reply is None:
            continue
        parts = []
        for path, value in reply.values:
            if value.kind is ir.ValueKind.LITERAL:
                parts.append(f"{ir.dotted(path)}={value.literal!r}")
            elif value.kind is ir.ValueKind.ERROR_CODE:
                parts.append(f"{ir.dotted(path)}=" + "{" + ", ".join(f"{e.name}:{c}" for e, c in value.codes) + "}")
            elif value.kind is ir.ValueKind.METADATA:
                parts.append(f"{ir.dotted(path)}=metadata[{value.key}]")
            else:
                parts.append(f"{ir.dotted(path)}={value.kind.value}")
        lines.append(f"  {title:<15} {'; '.join(parts) or '(all defaults)'}")
    for f in ir.extensions(proto.frame):
        files = [p.rsplit("/", 1)[-1] for p in f.node.python_sources + f.node.cpp_sources]
        lines.append(f"  extension       {ir.dotted(f.path)}: {f.node.kind} ({', '.join(files)})")
    return "\n".join(lines)
