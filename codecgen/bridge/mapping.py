"""Registry services -> ServiceEntry objects (and optional ``ExternalName`` alias Services).

Rules (each overridable per source, see :mod:`codecgen.bridge.config`):

- **host**: ``lower(name[-group][-version with . -> -])`` as dubbo2istio does, ``group`` and
  ``version`` read from the service's attributes; a service with a registry namespace (Nacos,
  Polaris, Consul...) gets ``.<namespace>`` appended.  Or the source's ``host`` template.
  A host that is not a DNS-1123 subdomain is refused (reported, nothing written).
- **name** ``aeraki-<host with . -> ->``; **namespace** the source's; **labels** ``manager:
  aeraki``, ``registry: <source names joined by .>``, plus the ownership label.
- **ports**: one per protocol, ``tcp-metaprotocol-<protocol>-<port>``, the port most instances
  of that protocol use; each endpoint maps that name to its own port.  An instance's protocol
  is the source's ``as`` option, else its own ``protocol`` if a ``--protocol`` spec has that
  name; a service none of whose instances has a known protocol is refused as unknown.
- **endpoints**: healthy instances; labels = registry metadata that are valid Kubernetes label
  keys and values, plus ``registry: <source>``; weight; locality.
- **location** ``MESH_INTERNAL`` unless the source says ``external`` or the service's attribute
  ``external`` is ``true``; **resolution** ``STATIC`` when every address is an IP, else ``DNS``.
- **Templates** (the Polaris pattern): a user's ServiceEntry labelled ``manager: aeraki`` and
  ``registry: <source name>``, annotated ``aeraki.net/polarisNamespace`` and
  ``aeraki.net/polarisService``, is filled in place: only ports, location (from
  ``aeraki.net/external``, default true) and, unless its resolution is ``NONE`` (where Istio
  forbids endpoints), endpoints.  Its name, host, resolution and labels stay the user's.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from codecgen.backends.k8s import DNS1035_LABEL_RE, DNS1123_LABEL_RE, MAX_LABEL
from codecgen.bridge.config import SourceOptions
from codecgen.bridge.model import Instance, Service

API_VERSION = "networking.istio.io/v1beta1"
OWNER_LABEL, OWNER = "app.kubernetes.io/managed-by", "codecgen-bridge"
HASH = "bridge.codecgen.io/hash"          # hash of what the bridge applied
SOURCES = "bridge.codecgen.io/sources"    # the sources that fed the object, comma-separated
POLARIS_NS, POLARIS_SVC = "aeraki.net/polarisNamespace", "aeraki.net/polarisService"
EXTERNAL = "aeraki.net/external"

LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                          r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

Member = tuple[SourceOptions, Service]


class Refused(Exception):
    """A service (or alias) that cannot be mapped; ``reason`` is ``unknown-protocol`` or ``invalid``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def subdomain_problem(value: str, label_limit: bool = True) -> Optional[str]:
    """Why ``value`` is not a DNS-1123 subdomain.  Host names (Istio's FQDN check) also limit each
    label to 63 characters; object names (Kubernetes' check) only the whole to 253."""
    if not value or len(value) > 253:
        return f"{value!r} is not a DNS-1123 subdomain (1..253 characters)"
    for label in value.split("."):
        if (label_limit and len(label) > MAX_LABEL) or not DNS1123_LABEL_RE.match(label):
            return f"{value!r} is not a DNS-1123 subdomain (label {label!r}: [a-z0-9-], at most 63)"
    return None


def label_key_ok(key: str) -> bool:
    """A Kubernetes label key: an optional DNS-1123 subdomain prefix (<= 253) and '/', then a name (<= 63)."""
    return isinstance(key, str) and bool(LABEL_KEY_RE.match(key)) and len(key.rpartition("/")[0]) <= 253


def label_value_ok(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LABEL and bool(LABEL_VALUE_RE.match(value))


def valid_labels(raw: Mapping[str, str]) -> dict[str, str]:
    """Registry metadata kept as endpoint labels: only valid Kubernetes label keys and values."""
    return {k: v for k, v in raw.items() if label_key_ok(k) and label_value_ok(v)}


def content_hash(obj: Mapping) -> str:
    """A stable hash of what the bridge applies (the hash annotation itself left out)."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HASH}
    text = json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stamp(obj: dict) -> dict:
    obj["metadata"].setdefault("annotations", {})[HASH] = content_hash(obj)
    return obj


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Placement:
    namespace: str
    host: str
    name: str


class Mapper:
    def __init__(self, options: Mapping[str, SourceOptions], protocols: Iterable[str]):
        self.options = dict(options)
        self.protocols = frozenset(protocols)

    # ------------------------------------------------------------------ one service

    def protocol_of(self, opts: SourceOptions, inst: Instance) -> Optional[str]:
        proto = opts.protocol or inst.protocol
        return proto if proto in self.protocols else None

    def place(self, svc: Service) -> Placement:
        """Where ``svc`` goes; :class:`Refused` if its protocol is unknown or a name is invalid."""
        opts = self.options[svc.source]
        if svc.instances and not any(self.protocol_of(opts, i) for i in svc.instances):
            seen = sorted({str(opts.protocol or i.protocol) for i in svc.instances})
            raise Refused("unknown-protocol",
                          f"{svc.source} service {svc.key}: protocol {', '.join(seen)} is not one of the "
                          f"--protocol specs ({', '.join(sorted(self.protocols)) or 'none'})")
        group = svc.attributes.get("group", "")
        version = svc.attributes.get("version", "")
        if opts.host:
            host = opts.host.format(name=svc.name, group=group, version=version,
                                    namespace=svc.namespace or "", source=svc.source).lower()
        else:
            host = "-".join(p for p in (svc.name, group, version.replace(".", "-")) if p).lower()
            if svc.namespace:
                host += "." + svc.namespace.lower()
        problem = subdomain_problem(host)
        name = "aeraki-" + host.replace(".", "-")
        problem = problem or (subdomain_problem(name, False) and f"entry name {subdomain_problem(name, False)}")
        if problem:
            raise Refused("invalid", f"{svc.source} service {svc.key}: host {problem}")
        return Placement(opts.namespace, host, name)

    # ------------------------------------------------------------------ one host

    def ports_and_endpoints(self, members: Sequence[Member]) -> tuple[list, list]:
        by_proto: dict[str, Counter] = {}
        for opts, svc in members:
            for inst in svc.instances:
                proto = self.protocol_of(opts, inst)
                if proto:
                    by_proto.setdefault(proto, Counter())[inst.port] += 1
        names, ports = {}, []
        for proto in sorted(by_proto):
            number = min(by_proto[proto], key=lambda p: (-by_proto[proto][p], p))
            names[proto] = f"tcp-metaprotocol-{proto}-{number}"
            ports.append({"number": number, "name": names[proto], "protocol": "TCP"})
        endpoints, seen = [], set()
        for opts, svc in sorted(members, key=lambda m: m[1].source):
            for inst in svc.instances:
                proto = self.protocol_of(opts, inst)
                if not proto or not inst.healthy or (inst.address, proto, inst.port) in seen:
                    continue
                seen.add((inst.address, proto, inst.port))
                ep = {"address": inst.address, "ports": {names[proto]: inst.port},
                      "labels": {**valid_labels(inst.labels), "registry": svc.source}}
                if inst.weight:
                    ep["weight"] = inst.weight
                if inst.locality:
                    ep["locality"] = inst.locality
                endpoints.append(ep)
        endpoints.sort(key=lambda e: (e["address"], sorted(e["ports"].items()), e["labels"]["registry"]))
        return ports, endpoints

    def _location(self, members: Sequence[Member]) -> str:
        for opts, svc in members:
            if opts.location:
                return opts.location
            if str(svc.attributes.get("external", "")).lower() == "true":
                return "MESH_EXTERNAL"
        return "MESH_INTERNAL"

    def entry(self, place: Placement, members: Sequence[Member]) -> dict:
        sources = sorted({svc.source for _, svc in members})
        ports, endpoints = self.ports_and_endpoints(members)
        resolution = "STATIC" if all(_is_ip(e["address"]) for e in endpoints) else "DNS"
        return stamp({
            "apiVersion": API_VERSION,
            "kind": "ServiceEntry",
            "metadata": {
                "name": place.name,
                "namespace": place.namespace,
                "labels": {"manager": "aeraki", "registry": ".".join(sources), OWNER_LABEL: OWNER},
                "annotations": {SOURCES: ",".join(sources)},
            },
            "spec": {"hosts": [place.host], "location": self._location(members),
                     "resolution": resolution, "ports": ports, "endpoints": endpoints},
        })

    def alias(self, entry: Mapping) -> dict:
        """The ``ExternalName`` Service that aliases ``<host with . -> ->.<ns>.svc`` to the entry's host."""
        meta, host = entry["metadata"], entry["spec"]["hosts"][0]
        name = host.replace(".", "-")
        fqdn = f"{name}.{meta['namespace']}.svc.cluster.local"
        if len(name) > MAX_LABEL or not DNS1035_LABEL_RE.match(name) or subdomain_problem(fqdn):
            raise Refused("invalid", f"alias Service for {host}: {name!r} is not a DNS-1035 label "
                                     f"of at most {MAX_LABEL} characters (or {fqdn} too long)")
        return stamp({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": meta["namespace"],
                         "labels": {OWNER_LABEL: OWNER, "registry": meta["labels"]["registry"]},
                         "annotations": {SOURCES: meta["annotations"][SOURCES]}},
            "spec": {"type": "ExternalName", "externalName": host},
        })

    # ------------------------------------------------------------------ user templates

    @staticmethod
    def template_target(obj: Mapping) -> Optional[tuple[str, str, str]]:
        """(source name, registry namespace, service) a user's template asks for, or None."""
        meta = obj.get("metadata") or {}
        labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
        if labels.get("manager") != "aeraki" or not labels.get("registry") or not notes.get(POLARIS_SVC):
            return None
        return labels["registry"], notes.get(POLARIS_NS, ""), notes[POLARIS_SVC]

    def fill(self, template: Mapping, members: Sequence[Member]) -> tuple[dict, dict]:
        """(the apply body: only the fields the bridge owns, the template as it will look)."""
        meta, spec = template["metadata"], template.get("spec") or {}
        ports, endpoints = self.ports_and_endpoints(members)
        external = str((meta.get("annotations") or {}).get(EXTERNAL, "true")).lower() != "false"
        body_spec = {"ports": ports or spec.get("ports") or [],
                     "location": "MESH_EXTERNAL" if external else "MESH_INTERNAL"}
        if spec.get("resolution", "NONE") != "NONE":
            body_spec["endpoints"] = endpoints
        sources = ",".join(sorted({svc.source for _, svc in members})) or self.template_target(template)[0]
        body = stamp({"apiVersion": API_VERSION, "kind": "ServiceEntry",  # the version kube.py talks
                      "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                   "annotations": {SOURCES: sources}},
                      "spec": body_spec})
        merged = {"apiVersion": body["apiVersion"], "kind": "ServiceEntry",
                  "metadata": {k: v for k, v in meta.items() if k in ("name", "namespace", "labels")},
                  "spec": {**spec, **body_spec}}
        merged["metadata"]["annotations"] = {**(meta.get("annotations") or {}),
                                             **body["metadata"]["annotations"]}
        return body, merged
