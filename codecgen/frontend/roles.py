"""Lower a ``Protocol``'s roles into ``ir.Roles``, checking every path."""

from __future__ import annotations

import re
import string
from typing import Any

from codecgen import ir
from codecgen.errors import SpecError
from codecgen.frontend.lower import Scope
from codecgen import spec as S

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class _Roles:
    def __init__(self, protocol: S.Protocol, frame: ir.Struct, scope: Scope):
        self.p = protocol
        self.name = protocol.name
        self.frame = frame
        self.scope = scope
        self.nodes: dict[ir.Path, Any] = {}
        self.in_array: set[ir.Path] = set()
        self._index(frame, in_array=False)

    def _index(self, node, in_array):
        if isinstance(node, ir.Struct):
            for f in node.fields:
                leaf = f.node
                while isinstance(leaf, ir.If) and not isinstance(leaf.then, ir.Struct):
                    leaf = leaf.then  # an optional scalar: roles see the scalar (absent: no key)
                self.nodes[f.path] = leaf
                if in_array:
                    self.in_array.add(f.path)
                if isinstance(f.node, ir.Bits):
                    for b in f.node.fields:
                        self.nodes[f.path + (b.name,)] = b
                        if in_array:
                            self.in_array.add(f.path + (b.name,))
                if isinstance(f.node, ir.Extension):
                    for o in f.node.outputs:
                        self.nodes[f.path + (o.name,)] = o
                self._index(f.node, in_array)
        elif isinstance(node, ir.Array):
            self._index(node.element, True)
        elif isinstance(node, ir.Region):
            self._index(node.inner, in_array)
        elif isinstance(node, ir.If):
            self._index(node.then, in_array)
        elif isinstance(node, ir.Switch):
            for _, c in node.cases:
                self._index(c, in_array)
            if node.default is not None:
                self._index(node.default, in_array)

    def fail(self, where: str, reason: str) -> SpecError:
        return SpecError(self.name, where, reason)

    def path(self, where: str, dotted: Any, kinds: tuple, what: str) -> ir.Path:
        if not isinstance(dotted, str) or not dotted:
            raise self.fail(where, f"expected a field path like 'header.id', got {dotted!r}")
        path = tuple(dotted.split("."))
        node = self.nodes.get(path)
        if node is None:
            raise self.fail(where, f"no field {dotted!r} in the frame")
        if path in self.in_array:
            raise self.fail(where, f"{dotted!r} is inside an array; roles need a single value")
        if not isinstance(node, kinds):
            raise self.fail(where, f"{dotted!r} is a {type(node).__name__}, {what}")
        return path

    def expr(self, where: str, value: Any) -> ir.Expr:
        from codecgen.frontend.lower import Lowerer

        lowerer = Lowerer.__new__(Lowerer)
        lowerer.scope = self.scope
        try:
            return lowerer.expr(value, (), (), what="condition")
        except SpecError as exc:
            raise self.fail(where, exc.reason) from None

    # ------------------------------------------------------------------ roles

    def request_id(self):
        if self.p.request_id is None:
            return None
        path = self.path("request_id", self.p.request_id, (*ir.SCALARS, ir.BitField, ir.ExtOutput),
                         "not an integer")
        if isinstance(self.nodes[path], ir.ExtOutput) and self.nodes[path].text:
            raise self.fail("request_id", f"{self.p.request_id!r} is a text output, not an integer")
        return path

    def type_rules(self):
        rules = []
        if self.p.heartbeat is not None:
            rules.append(ir.TypeRule(when=self.expr("heartbeat.when", self.p.heartbeat.when),
                                     type=ir.MessageType.Heartbeat))
        for i, rule in enumerate(self.p.message_type):
            if not isinstance(rule, S.When):
                raise self.fail(f"message_type[{i}]", "expected When(<condition>, MessageType.<X>)")
            if not isinstance(rule.type, ir.MessageType):
                raise self.fail(f"message_type[{i}]", f"{rule.type!r} is not a MessageType")
            rules.append(ir.TypeRule(when=self.expr(f"message_type[{i}]", rule.cond), type=rule.type))
        return tuple(rules)

    def routing_keys(self):
        keys = []
        for key, source in self.p.routing_keys.items():
            where = f"routing_keys.{key}"
            self.check_key(where, key)
            if isinstance(source, str):
                source = S.Key(source)
            if not isinstance(source, S.Key):
                raise self.fail(where, "expected a field path or Key(...)")
            path = self.path(where, source.field, (*ir.SCALARS, ir.BitField, ir.Bytes, ir.ExtOutput),
                             "routing keys need an integer, enum, string or bytes field")
            if not isinstance(source.publish_empty, bool):
                raise self.fail(where, "publish_empty must be True or False")
            keys.append(ir.RoutingKey(key=key, path=path, render=self.render(where, path, source.render),
                                      publish_empty=source.publish_empty))
        return tuple(keys)

    def check_key(self, where, key):
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise self.fail(where, f"key {key!r} must be lower-case ([a-z0-9_.-]); Aeraki matches keys lower-cased")
        if key.startswith(ir.RESERVED_PREFIX) or key in ir.RESERVED_KEYS:
            raise self.fail(where, f"key {key!r} is reserved by MetaProtocol")

    def render(self, where, path, render):
        node = self.nodes[path]
        is_bytes = isinstance(node, ir.Bytes) or (isinstance(node, ir.ExtOutput) and node.text)
        if render is None:
            if is_bytes:
                return ir.Render.TEXT
            return ir.Render.NAME if getattr(node, "enum", ()) else ir.Render.DECIMAL
        render = ir.Render(render)
        if is_bytes != (render in (ir.Render.TEXT, ir.Render.HEX)):
            raise self.fail(where, f"render {render.value!r} does not fit a {type(node).__name__} field")
        if render is ir.Render.NAME and not getattr(node, "enum", ()):
            raise self.fail(where, "render 'name' needs an Enum field")
        return render

    def operation_name(self):
        fmt = self.p.operation_name
        if fmt is None:
            return ()
        parts = []
        for text, field, spec, conv in string.Formatter().parse(fmt):
            if text:
                parts.append(ir.OperationPart(text=text))
            if field is not None:
                if spec or conv:
                    raise self.fail("operation_name", "format specs are not supported; use {field}")
                path = self.path("operation_name", field,
                                 (*ir.SCALARS, ir.BitField, ir.Bytes, ir.ExtOutput), "not usable in a name")
                parts.append(ir.OperationPart(path=path, render=self.render("operation_name", path, None)))
        return tuple(parts)

    def body(self):
        body = self.p.body
        if body is None:
            node = self.nodes.get(("body",))
            return ("body",) if isinstance(node, (ir.Bytes, ir.Extension)) and ("body",) not in self.in_array else None
        return self.path("body", body, (ir.Bytes, ir.Extension),
                         "the body must be a bytes field (Bytes, GreedyBytes or Prefixed(..., GreedyBytes))")

    def header_map(self):
        hm = self.p.headers
        if hm is None:
            return None
        path = self.path("headers", hm.field, (ir.Array, ir.Extension),
                         "headers must be an Array/PrefixedArray of key/value")
        array = self.nodes[path]
        if isinstance(array, ir.Extension):
            if not array.header_map:
                raise self.fail("headers", f"extension {array.kind!r} has no HEADER_MAP hooks")
            return ir.HeaderMap(array=path, key_field="", value_field="")
        element = array.element
        if not isinstance(element, ir.Struct):
            raise self.fail("headers", "the array element must be a Struct with key and value fields")
        names = {f.name: f for f in element.fields}
        for role, fname in (("key", hm.key), ("value", hm.value)):
            f = names.get(fname)
            if f is None or not isinstance(f.node, ir.Bytes) or f.node.greedy:
                raise self.fail(f"headers.{role}", f"element field {fname!r} must be a length-prefixed string")
            if f.node.size is not None and not self._derived_len(f.node.size, f.path):
                raise self.fail(f"headers.{role}",
                                f"{fname!r} is sized by a plain field; use PascalString or Rebuild(len_(...))")
        if array.count is not None and not self._derived_len(array.count, path):
            raise self.fail("headers", "the count must be a PrefixedArray or Rebuild(len_(this.<array>))")
        return ir.HeaderMap(array=path, key_field=hm.key, value_field=hm.value)

    def _derived_len(self, expr, path) -> bool:
        if isinstance(expr, ir.Ref):
            node = self.nodes.get(expr.path)
            if isinstance(node, ir.Int) and node.derived is not None:
                return any(p == path for p in ir.expr_refs(node.derived))
        return False

    def fixed_headers(self):
        out = []
        for key, field in self.p.fixed_headers.items():
            where = f"fixed_headers.{key}"
            self.check_key(where, key)
            path = self.path(where, field, (ir.Int, ir.Bytes), "fixed headers must be integer or string fields")
            node = self.nodes[path]
            if isinstance(node, ir.Int) and node.derived is not None:
                raise self.fail(where, f"{field!r} is derived (Rebuild) and cannot be set")
            if isinstance(node, ir.Bytes) and node.prefix is None and not node.prefix_varint:
                raise self.fail(where, f"{field!r} must be length-prefixed to be rewritten")
            out.append(ir.FixedHeader(key=key, path=path))
        return tuple(out)

    def reply(self, where: str, values) -> ir.Reply:
        out = []
        for dotted, value in values.items():
            w = f"{where}.{dotted}"
            path = self.path(w, dotted, (*ir.SCALARS, ir.BitField, ir.Bytes, ir.Extension),
                             "not a settable field")
            node = self.nodes[path]
            if isinstance(node, ir.Extension):
                out.append((path, self.extension_value(w, value, node)))
                continue
            if isinstance(node, ir.Int) and node.derived is not None:
                raise self.fail(w, "derived (Rebuild) fields are computed, not set")
            is_bytes = isinstance(node, ir.Bytes)
            out.append((path, self.value(w, value, is_bytes, node)))
        return ir.Reply(values=tuple(out))

    def extension_value(self, where, value, node: ir.Extension) -> ir.Value:
        if isinstance(value, S.ErrorMessage):
            if not node.error_message:
                raise self.fail(where, f"extension {node.kind!r} has no ERROR_MESSAGE hook")
            return ir.Value(ir.ValueKind.ERROR_MESSAGE)
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, (bytes, bytearray)):
            raise self.fail(where, "an extension field takes ERROR_MESSAGE or literal bytes")
        return ir.Value(ir.ValueKind.LITERAL, literal=bytes(value))

    def value(self, where, value, is_bytes, node) -> ir.Value:
        if isinstance(value, S.RequestId):
            if is_bytes:
                raise self.fail(where, "RequestId goes into an integer field")
            return ir.Value(ir.ValueKind.REQUEST_ID)
        if isinstance(value, S.ErrorMessage):
            if not is_bytes:
                raise self.fail(where, "ErrorMessage goes into a bytes/string field")
            return ir.Value(ir.ValueKind.ERROR_MESSAGE)
        if isinstance(value, S.ErrorCode):
            if is_bytes:
                raise self.fail(where, "ErrorCode goes into an integer field")
            codes = []
            for et in ir.ErrorType:
                code = value.codes.get(et, value.default)
                self.check_int(where, code, node)
                codes.append((et, int(code)))
            return ir.Value(ir.ValueKind.ERROR_CODE, codes=tuple(codes))
        if isinstance(value, S.FromMetadata):
            default = value.default
            if is_bytes:
                default = default.encode() if isinstance(default, str) else bytes(default)
            else:
                self.check_int(where, default, node)
            return ir.Value(ir.ValueKind.METADATA, key=value.key, literal=default)
        if is_bytes:
            if isinstance(value, str):
                value = value.encode()
            if not isinstance(value, (bytes, bytearray)):
                raise self.fail(where, f"{value!r} is not bytes or str")
            return ir.Value(ir.ValueKind.LITERAL, literal=bytes(value))
        if isinstance(value, str) and getattr(node, "enum", ()):
            mapping = dict(node.enum)
            if value not in mapping:
                raise self.fail(where, f"{value!r} is not a name of this enum")
            value = mapping[value]
        self.check_int(where, value, node)
        return ir.Value(ir.ValueKind.LITERAL, literal=int(value))

    def check_int(self, where, value, node):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"{value!r} is not an integer")
        if isinstance(node, ir.Int):
            lo, hi = node.type.min_value, node.type.max_value
        elif isinstance(node, ir.BitField):
            lo, hi = 0, (1 << node.width) - 1
        else:
            lo, hi = 0, (1 << 64) - 1
        if not lo <= value <= hi:
            raise self.fail(where, f"{value} does not fit the field ({lo}..{hi})")

    def drop(self):
        keys = tuple(self.p.drop_keys)
        prefixes = tuple(self.p.drop_prefixes)
        for k in keys + prefixes:
            if not isinstance(k, str):
                raise self.fail("drop_keys", f"{k!r} is not a string")
        return keys, prefixes


def lower_roles(protocol: S.Protocol, frame: ir.Struct, scope: Scope) -> ir.Roles:
    r = _Roles(protocol, frame, scope)
    body = r.body()
    for key, source in protocol.routing_keys.items():
        field = source.field if isinstance(source, S.Key) else source
        if body is not None and field == ir.dotted(body):
            raise r.fail(f"routing_keys.{key}", "the body is never copied out of the frame; "
                                                "route on a header field")
    drop_keys, drop_prefixes = r.drop()
    heartbeat = protocol.heartbeat
    response_error = None
    if protocol.response_error is not None:
        response_error = r.expr("response_error", protocol.response_error)
    return ir.Roles(
        request_id=r.request_id(),
        message_type_rules=r.type_rules(),
        response_error=response_error,
        routing_keys=r.routing_keys(),
        operation_name=r.operation_name(),
        header_map=r.header_map(),
        fixed_headers=r.fixed_headers(),
        drop_keys=drop_keys,
        drop_prefixes=drop_prefixes,
        body=body,
        error_reply=r.reply("error_reply", protocol.error_reply),
        heartbeat_reply=r.reply("heartbeat.reply", heartbeat.reply) if heartbeat else None,
    )
