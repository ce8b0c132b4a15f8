"""Kubernetes backend: ApplicationProtocol, MetaRouter, DestinationRule, Service, ServiceEntry.

``render(proto)`` reads only the IR (``codecgen.ir``), builds a small view model
here in Python (every computed value: names, hosts, example match and mutation)
and hands it to the templates beside this file, which only loop and insert.

Facts the resources rely on (see /work/shared/reference/aeraki-metaprotocol.md §6):

* ``ApplicationProtocol`` (``metaprotocol.aeraki.io/v1alpha1``) is cluster-scoped;
  ``spec.protocol`` -> ``spec.codec`` feeds Aeraki's global protocol map.
* Aeraki recognises a MetaProtocol port by its *name*, split on ``-``: element [1]
  must be ``metaprotocol``, element [2] is looked up (case-sensitively) in that
  map.  Kubernetes Service port names (and Istio ServiceEntry port names) must be
  DNS-1123 labels: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters.  So a
  protocol token usable in a port name is ``[a-z0-9]+``: no ``-`` (Aeraki's split)
  and no ``_`` (not allowed in a DNS-1123 label).
* A MetaRouter has exactly one host; mutations need a non-empty key and value.
* Aeraki's outbound filter is keyed on the service VIP: no headless Service, and a
  ServiceEntry needs an address (Aeraki allocates 240.240.x.y when none is given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from codecgen import ir, naming
from codecgen.backends.templating import environment
from codecgen.errors import UserError

__all__ = ["render", "FILES", "DEFAULT_PORT", "DNS1123_LABEL_RE", "DNS1035_LABEL_RE", "MAX_LABEL"]

# file name -> template, in the order the resources are best applied
FILES = (
    ("applicationprotocol.yaml", "applicationprotocol.yaml.j2"),
    ("service.yaml", "service.yaml.j2"),
    ("serviceentry.yaml", "serviceentry.yaml.j2"),
    ("destinationrule.yaml", "destinationrule.yaml.j2"),
    ("metarouter.yaml", "metarouter.yaml.j2"),
)

DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_LABEL = 63

SUBSETS = ("v1", "v2")
# The server port of the example Service/ServiceEntry (and of the Wireshark dissector's tcp.port entry).
DEFAULT_PORT = 20880
# Candidate keys for the example request mutation when the codec writes free-form
# keys (a header map) or ignores mutations; the first one the codec does not drop.
MUTATION_KEYS = ("x-codecgen-route", "codecgen-route")


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class Match:
    key: str  # metadata key (the routing key)
    value: str  # example exact value
    comment: str  # where the value comes from


@dataclass(frozen=True)
class Mutation:
    key: str
    value: str
    comment: str


@dataclass(frozen=True)
class Route:
    name: str
    comment: str
    subset: str
    match: Optional[Match]  # None: matches every request
    mutation: Optional[Mutation]


@dataclass(frozen=True)
class View:
    version: str
    spec_file: str
    protocol: str
    codec: str
    ap_name: str  # metadata.name of the ApplicationProtocol (DNS-1123 subdomain)
    namespace: str
    service: str
    host: str  # <service>.<namespace>.svc.cluster.local
    port: int
    port_name: str
    subsets: tuple
    version_label: str
    routes: tuple  # of Route, in match order
    hash_key: str  # key for the commented consistent-hash example ("" when none)


def _one_line(text: str) -> str:
    """Text safe to insert in a YAML comment line."""
    return "".join(c if c.isprintable() else " " for c in text)


def _codecgen_version() -> str:
    from codecgen.version import __version__

    return __version__


def _check_inputs(proto: ir.ProtocolIR, namespace: str, service: str, port: int) -> str:
    problem = naming.check_token(proto.name)
    if problem:
        raise UserError(problem)
    if "_" in proto.name:
        raise UserError(
            f"protocol name {proto.name!r} contains '_': Kubernetes Service and Istio "
            f"ServiceEntry port names must be DNS-1123 labels ([a-z0-9-]), and Aeraki "
            f"reads the protocol from element [2] of the port name split on '-' "
            f"({naming.port_name(proto.name)!r} would be rejected); use [a-z0-9] only")
    port_name = naming.port_name(proto.name)
    if len(port_name) > MAX_LABEL or not DNS1123_LABEL_RE.match(port_name):
        raise UserError(
            f"port name {port_name!r} is not a DNS-1123 label of at most {MAX_LABEL} "
            f"characters; shorten the protocol name")
    if not isinstance(namespace, str) or len(namespace) > MAX_LABEL or not DNS1123_LABEL_RE.match(namespace):
        raise UserError(f"namespace {namespace!r} must be a DNS-1123 label ([a-z0-9-], at most 63 characters)")
    if not isinstance(service, str) or len(service) > MAX_LABEL or not DNS1035_LABEL_RE.match(service):
        raise UserError(
            f"service name {service!r} must be a DNS-1035 label "
            f"([a-z] then [a-z0-9-], at most 63 characters)")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"port {port!r} must be an integer in 1..65535")
    return port_name


def _node(proto: ir.ProtocolIR, path: ir.Path):
    """The wire node at ``path``: a Field's node, or a BitField inside a Bits group."""
    found = ir.find_field(proto.frame, path)
    if found is not None:
        return found.node
    parent = ir.find_field(proto.frame, path[:-1]) if len(path) > 1 else None
    if parent is not None and isinstance(parent.node, ir.Bits):
        for bit in parent.node.fields:
            if bit.name == path[-1]:
                return bit
    return None


def _example_value(node, render: ir.Render) -> tuple[str, str]:
    """An example value (as the codec renders it with ``putString``) and a note."""
    enum = getattr(node, "enum", ()) or ()
    flags = getattr(node, "flags", ()) or ()
    if render is ir.Render.NAME and enum:
        return enum[0][0], f"enum name {enum[0][0]} (= {enum[0][1]})"
    if render is ir.Render.DECIMAL:
        if enum:
            return str(enum[0][1]), f"enum value {enum[0][0]} in decimal"
        if flags:
            return str(flags[0][1]), f"flag {flags[0][0]} in decimal"
        if isinstance(node, ir.Const):
            return str(int.from_bytes(node.value, "big")), "the constant in decimal"
        return "1", "an example value, in decimal"
    if isinstance(node, ir.Const) and node.value:
        if render is ir.Render.HEX:
            return node.value.hex(), "the constant in lower-case hex"
        text = node.value.decode("latin-1")
        if text.isprintable():
            return text, "the constant's bytes"
    size = node.size.value if isinstance(node, ir.Bytes) and isinstance(node.size, ir.Lit) else None
    if render is ir.Render.HEX:
        if size:
            return ("cafebabe" * size)[: 2 * size], f"example {size} bytes in lower-case hex"
        return "cafe", "example bytes in lower-case hex"
    if size:
        return ("example" + "x" * size)[:size], f"example {size} bytes, as text"
    return "example", "example bytes, as text"


def _dropped(roles: ir.Roles, key: str) -> bool:
    return key in roles.drop_keys or any(key.startswith(p) for p in roles.drop_prefixes)


def _mutation(proto: ir.ProtocolIR) -> Mutation:
    roles = proto.roles
    for fixed in roles.fixed_headers:
        if _dropped(roles, fixed.key):
            continue
        node = _node(proto, fixed.path)
        if isinstance(node, ir.Bytes):
            value = "example"
        else:
            value = "1"
        return Mutation(fixed.key, value,
                        f"the codec writes {fixed.key!r} into field {ir.dotted(fixed.path)}")
    key = next((k for k in MUTATION_KEYS if not _dropped(roles, k)), MUTATION_KEYS[0])
    if roles.header_map is not None:
        comment = (f"the codec adds this key to the header map "
                   f"{ir.dotted(roles.header_map.array)}")
    else:
        comment = ("this protocol has no header map and no fixed header: the codec "
                   "leaves the frame unchanged, so this mutation only shows the syntax")
    if _dropped(roles, key):
        comment += "; note: the spec's drop_keys/drop_prefixes drop this key"
    return Mutation(key, "v1", comment)


def view(proto: ir.ProtocolIR, *, namespace: str = "default", service: Optional[str] = None,
         port: int = DEFAULT_PORT) -> View:
    """Every value the templates insert, computed from the IR and the options."""
    service = service if service is not None else proto.name.replace("_", "-")
    port_name = _check_inputs(proto, namespace, service, port)
    v1, v2 = SUBSETS
    mutation = _mutation(proto)
    if proto.roles.routing_keys:
        rk = proto.roles.routing_keys[0]
        value, note = _example_value(_node(proto, rk.path), rk.render)
        match = Match(rk.key, value, f"field {ir.dotted(rk.path)}: {note}")
        routes = (
            Route(name=f"{v1}-by-{rk.key}", subset=v1, match=match, mutation=mutation,
                  comment=_one_line(f"Requests whose {rk.key!r} is {value!r} "
                                    f"({match.comment}) go to {v1}.")),
            Route(name=f"default-{v2}", subset=v2, match=None, mutation=None,
                  comment=f"Everything else goes to {v2}."),
        )
    else:
        match = None
        routes = (
            Route(name=v1, subset=v1, match=None, mutation=mutation,
                  comment=(f"Every request goes to {v1}: the spec declares no routing key "
                           f"(Protocol.routing_keys is empty), so the codec publishes no "
                           f"attribute to match on.")),
        )
    return View(
        version=_codecgen_version(),
        spec_file=_one_line(proto.spec_file or "<in-memory spec>"),
        protocol=proto.name,
        codec=proto.codec_name,
        ap_name=proto.name.replace("_", "-"),
        namespace=namespace,
        service=service,
        host=f"{service}.{namespace}.svc.cluster.local",
        port=port,
        port_name=port_name,
        subsets=SUBSETS,
        version_label="version",
        routes=routes,
        hash_key=match.key if match else "",
    )


def render(proto: ir.ProtocolIR, *, namespace: str = "default", service: Optional[str] = None,
           port: int = DEFAULT_PORT) -> dict[str, str]:
    """Relative file name under ``k8s/`` -> YAML text (one document per file)."""
    vm = view(proto, namespace=namespace, service=service, port=port)
    env = environment(__name__)
    return {name: env.get_template(template).render(vm=vm).rstrip("\n") + "\n"
            for name, template in FILES}
