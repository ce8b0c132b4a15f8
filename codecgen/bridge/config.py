"""The bridge's settings: ``--source`` URLs with their per-source options, and ``--protocol`` specs.

A source's mapping options ride in the URL's fragment, so they stay next to the source they
change and the source module never sees them::

    --source 'zookeeper://127.0.0.1:2181/dubbo#name=zk1&namespace=prod&as=dubbo&alias=true'

``name`` (the source's name, default its scheme; a DNS-1123 label), ``as`` (the protocol of
every service of the source, instead of each instance's own), ``namespace`` (where its
entries go), ``location`` (``internal``/``external``; default: a service attribute
``external: "true"`` makes it external), ``host`` (a template over ``{name} {group} {version}
{namespace} {source}``, default the Dubbo rule, see :mod:`codecgen.bridge.mapping`), ``alias``
(``true``: also an ``ExternalName`` Service per entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from codecgen import naming
from codecgen.backends.k8s import DNS1123_LABEL_RE, MAX_LABEL
from codecgen.backends.k8s.validate import BUILTIN_PROTOCOLS
from codecgen.errors import UserError

OPTION_KEYS = ("name", "as", "namespace", "location", "host", "alias")
LOCATIONS = {"internal": "MESH_INTERNAL", "external": "MESH_EXTERNAL"}
HOST_FIELDS = ("name", "group", "version", "namespace", "source")


@dataclass(frozen=True)
class SourceOptions:
    url: str                      # the URL the source module gets (fragment removed)
    name: str
    namespace: str
    protocol: Optional[str] = None
    location: Optional[str] = None   # MESH_INTERNAL / MESH_EXTERNAL, None: per service
    host: Optional[str] = None       # host template, None: the default rule
    alias: bool = False


def dns_label_problem(value: str, what: str) -> Optional[str]:
    if not isinstance(value, str) or len(value) > MAX_LABEL or not DNS1123_LABEL_RE.match(value):
        return f"{what} {value!r} is not a DNS-1123 label ([a-z0-9-], at most {MAX_LABEL} characters)"
    return None


def parse_source(arg: str, default_namespace: str) -> SourceOptions:
    """One ``--source`` argument; a one-line :class:`UserError` naming it when it is malformed."""
    parts = urlsplit(arg)
    if not parts.scheme or "://" not in arg:
        raise UserError(f"--source {arg}: expected SCHEME://..., e.g. zookeeper://127.0.0.1:2181/dubbo")
    opts = {}
    for key, value in parse_qsl(parts.fragment, keep_blank_values=True):
        if key not in OPTION_KEYS:
            raise UserError(f"--source {arg}: unknown option {key!r} after '#' "
                            f"(known: {', '.join(OPTION_KEYS)})")
        opts[key] = value
    url = urlunsplit(parts._replace(fragment=""))
    name = opts.get("name") or parts.scheme
    namespace = opts.get("namespace") or default_namespace
    for value, what in ((name, "name"), (namespace, "namespace")):
        problem = dns_label_problem(value, what)
        if problem:
            raise UserError(f"--source {arg}: {problem}")
    location = opts.get("location")
    if location is not None and location not in LOCATIONS:
        raise UserError(f"--source {arg}: location must be internal or external, not {location!r}")
    host = opts.get("host")
    if host is not None:
        try:
            host.format(**{f: "x" for f in HOST_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise UserError(f"--source {arg}: host template {host!r}: {exc!r} "
                            f"(fields: {', '.join('{' + f + '}' for f in HOST_FIELDS)})") from None
    alias = opts.get("alias", "false")
    if alias not in ("true", "false"):
        raise UserError(f"--source {arg}: alias must be true or false, not {alias!r}")
    protocol = opts.get("as") or None
    if protocol is not None and naming.check_token(protocol):
        raise UserError(f"--source {arg}: as={protocol}: {naming.check_token(protocol)}")
    return SourceOptions(url=url, name=name, namespace=namespace, protocol=protocol,
                         location=LOCATIONS.get(location) if location else None,
                         host=host, alias=alias == "true")


def parse_sources(args: Iterable[str], default_namespace: str) -> list[SourceOptions]:
    out = [parse_source(a, default_namespace) for a in args]
    if not out:
        raise UserError("--source: at least one registry is needed")
    seen = {}
    for o in out:
        if o.name in seen:
            raise UserError(f"--source {o.url}: name {o.name!r} is also used by {seen[o.name]}; "
                            f"give one a #name=...")
        seen[o.name] = o.url
    return out


def load_protocols(specs: Iterable[str]) -> dict[str, str]:
    """``--protocol`` values -> {protocol name: where it came from}.

    A value is a codecgen spec file, or the name of a protocol Aeraki has built in (``dubbo``,
    ``thrift``).  Names that cannot be an Aeraki port-name segment are refused.
    """
    from codecgen.frontend import load

    out: dict[str, str] = {}
    for spec in specs:
        if not Path(spec).exists() and spec in BUILTIN_PROTOCOLS:
            name = spec
        elif not Path(spec).is_file():
            raise UserError(f"--protocol {spec}: no such spec file (or a built-in protocol: "
                            f"{', '.join(sorted(BUILTIN_PROTOCOLS))})")
        else:
            name = load(spec).name
        problem = naming.check_token(name)
        if problem:
            raise UserError(f"--protocol {spec}: {problem}")
        out.setdefault(name, spec)
    return out
