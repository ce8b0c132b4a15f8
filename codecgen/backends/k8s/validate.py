"""Validate generated (or hand-written) resources against the schemas in ``schemas/``.

``validate(doc)`` checks one parsed YAML document: the JSON Schema picked by
apiVersion/kind, then rules a schema cannot say (unique port names, weights that
sum to 100, the Aeraki port-name rule).  ``validate_all(docs)`` also checks the
documents against each other: the protocol in every ``tcp-metaprotocol-<p>-...``
port is registered by an ApplicationProtocol in the same output (or built in),
and a MetaRouter's subsets exist in a DestinationRule for its host.
``validate_files({name: yaml_text})`` parses and does both.  Every entry point takes
``target`` (a build target of the pins, the default one when None): an apiVersion the target's
Istio / Aeraki does not serve, or a field its CRD lacks, is an error (``served_api_versions``
and ``unserved_fields`` of the target in the build pins, targets.yaml).

Errors are plain strings: ``<Kind> <name>: <field path>: <what is wrong>``.
``jsonschema`` is a dev dependency, imported on first use.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping, Optional

from codecgen.errors import UserError
from codecgen.pins import Target, get_target

__all__ = ["validate", "validate_all", "validate_files", "port_name_problems",
           "BUILTIN_PROTOCOLS", "SCHEMAS"]

AERAKI = "metaprotocol.aeraki.io/v1alpha1"
ISTIO_VERSIONS = ("networking.istio.io/v1alpha3", "networking.istio.io/v1beta1",
                  "networking.istio.io/v1")

# (apiVersion, kind) -> schema file in schemas/: every apiVersion any Istio serves the schema
# for; which of them a target's control plane serves is in the pins.
SCHEMAS: dict[tuple[str, str], str] = {
    (AERAKI, "ApplicationProtocol"): "applicationprotocol.schema.json",
    (AERAKI, "MetaRouter"): "metarouter.schema.json",
    ("v1", "Service"): "service.schema.json",
    **{(v, "DestinationRule"): "destinationrule.schema.json" for v in ISTIO_VERSIONS},
    **{(v, "ServiceEntry"): "serviceentry.schema.json" for v in ISTIO_VERSIONS},
}

# Aeraki registers these codecs itself (hard-coded in internal/model/metaprotocol).
BUILTIN_PROTOCOLS = frozenset({"dubbo", "thrift"})


@lru_cache(maxsize=None)
def _validator(schema_file: str):
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - dev dependency
        raise UserError("validating Kubernetes resources needs jsonschema: pip install jsonschema") from None
    text = resources.files(__package__).joinpath("schemas", schema_file).read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _label(doc: Mapping) -> str:
    kind = doc.get("kind", "<no kind>")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"{kind} {name}" if name else str(kind)


# jsonschema's own message names the offending property: keep it, add the reason
_NAMES_THE_FIELD = frozenset({"required", "additionalProperties", "dependentRequired"})
# the instance is a whole object: the reason alone reads better
_WHOLE_OBJECT = frozenset({"anyOf", "oneOf", "not"})


def _schema_errors(doc: Mapping, schema_file: str) -> list[str]:
    out = []
    errors = sorted(_validator(schema_file).iter_errors(doc),
                    key=lambda e: (list(map(str, e.absolute_path)), e.validator, e.message))
    for err in errors:
        reasons = err.schema.get("x-reasons", {}) if isinstance(err.schema, Mapping) else {}
        reason = reasons.get(err.validator)
        where = _where(err.absolute_path)
        if reason and err.validator in _NAMES_THE_FIELD:
            out.append(f"{where}: {err.message}; {reason}")
        elif reason and err.validator in _WHOLE_OBJECT:
            out.append(f"{where}: {reason}")
        elif reason:
            out.append(f"{where}: {reason} (got {_short(err.instance)})")
        else:
            out.append(f"{where}: {err.message}")
    return out


# --------------------------------------------------------------------------- rules beyond the schema


def port_name_problems(name: Any, protocols: Optional[Iterable[str]] = None) -> list[str]:
    """What is wrong with ``name`` as an Aeraki MetaProtocol port name.

    Aeraki treats a port as MetaProtocol when ``name.split('-')[1]`` is
    ``metaprotocol`` (case-insensitive), then reads the application protocol from
    element [2] and looks it up, case-sensitively, among the registered protocols.
    Names that are not MetaProtocol ports give no problem.
    """
    if not _is_metaprotocol_port(name):
        return []
    parts = name.split("-")
    problems = []
    if len(parts) < 3 or not parts[2]:
        problems.append(f"port name {name!r} has no protocol after 'metaprotocol': Aeraki reads "
                        f"element [2] of the name split on '-' (tcp-metaprotocol-<protocol>-<suffix>)"
                        f" and indexes out of range")
        return problems
    if parts[0].lower() != "tcp":
        problems.append(f"port name {name!r} must start with 'tcp-' so that Istio builds a TCP "
                        f"listener whose tcp_proxy filter Aeraki replaces")
    if protocols is not None and parts[2] not in set(protocols):
        known = ", ".join(sorted(set(protocols))) or "none"
        problems.append(f"port name {name!r} names protocol {parts[2]!r}, which no ApplicationProtocol "
                        f"in this output registers (registered: {known})")
    return problems


def _is_metaprotocol_port(name: Any) -> bool:
    parts = name.split("-") if isinstance(name, str) else []
    return len(parts) >= 2 and parts[1].lower() == "metaprotocol"


def _ports(doc: Mapping) -> list[tuple[str, Mapping]]:
    spec = doc.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("ports"), list):
        return []
    return [(f"spec.ports[{i}]", p) for i, p in enumerate(spec["ports"]) if isinstance(p, Mapping)]


def _semantic(doc: Mapping, protocols: Optional[Iterable[str]]) -> list[str]:
    kind = doc.get("kind")
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    out = []
    if kind in ("Service", "ServiceEntry"):
        ports = _ports(doc)
        seen_names: dict[str, str] = {}
        seen_numbers: dict[Any, str] = {}
        number_key = "port" if kind == "Service" else "number"
        for where, port in ports:
            name = port.get("name")
            if kind == "Service" and len(ports) > 1 and not name:
                out.append(f"{where}.name: required when a Service has more than one port")
            if name:
                if name in seen_names:
                    out.append(f"{where}.name: duplicate port name {name!r} (also {seen_names[name]})")
                seen_names.setdefault(name, where)
            number = port.get(number_key)
            key = (number, port.get("protocol", "TCP")) if kind == "Service" else number
            if number is not None:
                if key in seen_numbers:
                    out.append(f"{where}.{number_key}: duplicate port {number} (also {seen_numbers[key]})")
                seen_numbers.setdefault(key, where)
            out.extend(f"{where}.name: {p}" for p in port_name_problems(name, protocols))
        is_mp = any(_is_metaprotocol_port(p.get("name")) for _, p in ports)
        if kind == "Service":
            headless = spec.get("clusterIP") == "None"
            if not ports and not headless and spec.get("type") != "ExternalName":
                out.append("spec.ports: required (at least one port) unless the Service is headless or ExternalName")
            if headless and is_mp:
                out.append("spec.clusterIP: a MetaProtocol Service must not be headless: Aeraki binds its "
                           "outbound filter to the <VIP>_<port> listener")
    if kind == "MetaRouter":
        for i, route in enumerate(spec.get("routes") or []):
            if not isinstance(route, Mapping):
                continue
            dests = [d for d in route.get("route") or [] if isinstance(d, Mapping)]
            if len(dests) > 1:
                total = sum(d.get("weight", 0) for d in dests if isinstance(d.get("weight", 0), int))
                if total != 100:
                    out.append(f"spec.routes[{i}].route: total destination weight {total} != 100 "
                               f"(Aeraki's webhook, for more than one destination)")
    if kind == "DestinationRule":
        names = [s.get("name") for s in spec.get("subsets") or [] if isinstance(s, Mapping)]
        for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
            out.append(f"spec.subsets: duplicate subset name {name!r}")
    return out


# --------------------------------------------------------------------------- entry points


def _unserved(doc: Mapping, t: Target) -> list[str]:
    """apiVersion and fields the target's control plane does not serve."""
    kind, version = doc.get("kind"), doc.get("apiVersion")
    out = []
    served = t.api_versions(str(kind))
    if served is not None and version not in served:
        out.append(f"apiVersion: {version} is not served for {kind} by the control plane of target "
                   f"{t.name} (Istio {t.istio_version}; served: {', '.join(served)})")
    for path in t.fields_unserved(str(kind)):
        for where in _present(doc, path.split(".")):
            out.append(f"{where}: not in the {kind} CRD of Istio {t.istio_version} (target {t.name})")
    return out


def _present(node: Any, parts: list, where: str = "") -> list[str]:
    """Where the dotted ``parts`` (``name[]`` for every item of a list) exist in ``node``."""
    if not parts:
        return [where]
    part, rest = parts[0], parts[1:]
    each = part.endswith("[]")
    name = part[:-2] if each else part
    if not isinstance(node, Mapping) or name not in node:
        return []
    here = f"{where}.{name}" if where else name
    if not each:
        return _present(node[name], rest, here)
    items = node[name] if isinstance(node[name], list) else []
    return [w for i, item in enumerate(items) for w in _present(item, rest, f"{here}[{i}]")]


def validate(doc: Any, *, protocols: Optional[Iterable[str]] = None,
             target: Optional[str] = None) -> list[str]:
    """Readable problems with one resource; empty when it is valid.

    ``protocols``: the registered protocol names to check MetaProtocol port names
    against (``validate_all`` passes the ApplicationProtocols of the output plus
    Aeraki's built-ins); ``None`` checks only the port names' shape.  ``target``: the build
    target whose control plane must serve the resource (the pins' default when None).
    """
    if not isinstance(doc, Mapping):
        return [f"(document): expected a mapping, got {type(doc).__name__}"]
    key = (doc.get("apiVersion"), doc.get("kind"))
    schema_file = SCHEMAS.get(key)  # type: ignore[arg-type]
    label = _label(doc)
    if schema_file is None:
        known = ", ".join(f"{v}/{k}" for v, k in sorted(SCHEMAS))
        return [f"{label}: no schema for apiVersion {key[0]!r} kind {key[1]!r} (known: {known})"]
    problems = _schema_errors(doc, schema_file) + _unserved(doc, get_target(target)) + _semantic(doc, protocols)
    return [f"{label}: {p}" for p in problems]


def _fqdn(doc: Mapping) -> Optional[str]:
    meta = doc.get("metadata") or {}
    if not isinstance(meta, Mapping) or not meta.get("name"):
        return None
    return f"{meta['name']}.{meta.get('namespace') or 'default'}.svc.cluster.local"


def validate_all(docs: Iterable[Any], names: Optional[Iterable[str]] = None,
                 target: Optional[str] = None) -> list[str]:
    """``validate`` every document, plus the checks across documents.

    ``names`` (parallel to ``docs``, e.g. file names) prefix each document's errors.
    """
    docs = list(docs)
    prefixes = [f"{n}: " for n in names] if names is not None else [""] * len(docs)
    pairs = [(pre, d) for pre, d in zip(prefixes, docs) if d is not None]
    docs = [d for _, d in pairs]
    registered = set(BUILTIN_PROTOCOLS)
    for d in docs:
        if isinstance(d, Mapping) and d.get("kind") == "ApplicationProtocol":
            proto = (d.get("spec") or {}).get("protocol") if isinstance(d.get("spec"), Mapping) else None
            if isinstance(proto, str) and proto:
                registered.add(proto)
    out = []
    for pre, d in pairs:
        out.extend(pre + e for e in validate(d, protocols=registered, target=target))
    # subsets a MetaRouter names must exist in a DestinationRule for the same host
    subsets: dict[str, set] = {}
    for d in docs:
        if isinstance(d, Mapping) and d.get("kind") == "DestinationRule" and isinstance(d.get("spec"), Mapping):
            host = d["spec"].get("host")
            names = {s.get("name") for s in d["spec"].get("subsets") or [] if isinstance(s, Mapping)}
            subsets.setdefault(host, set()).update(names)
            if isinstance(host, str) and "." not in host:  # a short name: relative to the rule's namespace
                ns = (d.get("metadata") or {}).get("namespace") or "default"
                subsets.setdefault(f"{host}.{ns}.svc.cluster.local", set()).update(names)
    hosts = set()
    for d in docs:
        if isinstance(d, Mapping) and d.get("kind") == "Service":
            hosts.add(_fqdn(d))
        if isinstance(d, Mapping) and d.get("kind") == "ServiceEntry" and isinstance(d.get("spec"), Mapping):
            hosts.update(h for h in d["spec"].get("hosts") or [] if isinstance(h, str))
    for pre, d in pairs:
        if not (isinstance(d, Mapping) and d.get("kind") == "MetaRouter" and isinstance(d.get("spec"), Mapping)):
            continue
        label = pre + _label(d)
        mr_hosts = d["spec"].get("hosts") or []
        if hosts and len(mr_hosts) == 1 and mr_hosts[0] not in hosts:
            out.append(f"{label}: spec.hosts[0]: {mr_hosts[0]!r} is not the host of any Service or "
                       f"ServiceEntry in this output ({', '.join(sorted(h for h in hosts if h))})")
        for i, route in enumerate(d["spec"].get("routes") or []):
            if not isinstance(route, Mapping):
                continue
            targets = [(f"spec.routes[{i}].route[{j}].destination", r.get("destination"))
                       for j, r in enumerate(route.get("route") or []) if isinstance(r, Mapping)]
            targets.append((f"spec.routes[{i}].mirror", route.get("mirror")))
            for where, dest in targets:
                if not isinstance(dest, Mapping) or not dest.get("subset"):
                    continue
                known = subsets.get(dest.get("host"))
                if known is not None and dest["subset"] not in known:
                    out.append(f"{label}: {where}.subset: subset {dest['subset']!r} is not defined by the "
                               f"DestinationRule for {dest.get('host')!r} (defined: {', '.join(sorted(map(str, known)))})")
    return out


def validate_files(files: Mapping[str, str], target: Optional[str] = None) -> list[str]:
    """Parse every YAML file (several documents allowed) and ``validate_all`` them."""
    import yaml

    docs, where, out = [], [], []  # where: the file each document came from
    for name in sorted(files):
        try:
            parsed = [d for d in yaml.safe_load_all(files[name]) if d is not None]
        except yaml.YAMLError as exc:
            out.append(f"{name}: not valid YAML: {exc}")
            continue
        if not parsed:
            out.append(f"{name}: no YAML document")
        docs.extend(parsed)
        where.extend([name] * len(parsed))
    return out + validate_all(docs, names=where, target=target)
