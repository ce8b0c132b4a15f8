"""``nacos://HOST:PORT[?namespace=ID&group=G[,G2]&interval=10s&timeout=10s]``: Nacos naming.

Nacos v1 open API (nacos.io, "Open API"): ``GET /nacos/v1/ns/service/list`` (``pageNo``,
``pageSize``, ``groupName``, ``namespaceId`` -> ``{"count": N, "doms": [names]}``), then for each
service ``GET /nacos/v1/ns/instance/list`` (``serviceName``, ``groupName``, ``namespaceId``,
``healthyOnly=false`` -> ``{"hosts": [{"ip", "port", "weight", "healthy", "enabled",
"metadata", ...}]}``). Nacos has no blocking query in v1: the source polls every ``interval``.
Groups default to ``DEFAULT_GROUP``; the namespace to Nacos's public one (reported as ``public``).

Service key ``<group>@@<service>`` (Nacos's own grouped name); name ``<service>``; namespace the
namespace id; attributes ``{"group": <group>}``. Instance: address ``ip``, port, protocol
``metadata.protocol``, labels = metadata, weight = the double weight rounded (a positive weight
never rounds to 0), healthy = ``healthy`` and ``enabled``. A service with no instance left stays,
with zero instances (Nacos keeps the service).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from codecgen.bridge.model import Instance, Service, Snapshot, SourceError
from codecgen.bridge.sources import urlparts
from codecgen.bridge.sources.changes import PolledHttpSource

PAGE = 500
SERVICES = "/nacos/v1/ns/service/list"
INSTANCES = "/nacos/v1/ns/instance/list"


def from_url(url: str, name: Optional[str] = None) -> "NacosSource":
    parts = urlparts.parse(url, 8848, known=("namespace", "group", "interval", "timeout"))
    return NacosSource(url, name, parts.host, parts.port, namespace=parts.one("namespace", ""),
                       groups=parts.many("group") or ["DEFAULT_GROUP"],
                       interval=parts.seconds("interval", 10.0),
                       timeout=parts.seconds("timeout", 10.0))


class NacosSource(PolledHttpSource):
    scheme = "nacos"

    def __init__(self, url: str, name: Optional[str], host: str, port: int, namespace: str,
                 groups: List[str], interval: float, timeout: float):
        super().__init__(url, name, host, port, interval, timeout)
        self.namespace = namespace
        self.groups = groups

    def read(self) -> Snapshot:
        snapshot: Dict[str, Service] = {}
        for group in self.groups:
            for service in self._services(group):
                found = self._service(group, service)
                snapshot[found.key] = found
        return snapshot

    def _ns(self) -> list:
        return [("namespaceId", self.namespace)] if self.namespace else []

    def _services(self, group: str) -> List[str]:
        names: List[str] = []
        page = 1
        while True:
            body = self._http.get(SERVICES, [("pageNo", page), ("pageSize", PAGE),
                                             ("groupName", group)] + self._ns()).body
            if not isinstance(body, dict) or not isinstance(body.get("doms", []), list):
                raise SourceError(f"nacos {self._http.url(SERVICES)}: unexpected answer")
            doms = body.get("doms") or []
            names.extend(doms)
            if not doms or len(names) >= int(body.get("count", 0)):
                return names
            page += 1

    def _service(self, group: str, service: str) -> Service:
        query = [("serviceName", service), ("groupName", group), ("healthyOnly", "false")]
        body = self._http.get(INSTANCES, query + self._ns()).body
        if not isinstance(body, dict) or not isinstance(body.get("hosts", []), list):
            raise SourceError(f"nacos {self._http.url(INSTANCES, query)}: unexpected answer")
        try:
            instances = [_instance(host) for host in body.get("hosts") or ()]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"nacos service {group}@@{service}: malformed host ({exc})") from None
        return Service(source=self.name, key=f"{group}@@{service}", name=service,
                       namespace=self.namespace or "public", attributes={"group": group},
                       instances=tuple(sorted(instances, key=lambda i: (i.address, i.port))))


def _instance(host: dict) -> Instance:
    metadata = {str(k): str(v) for k, v in (host.get("metadata") or {}).items()}
    weight = float(host.get("weight", 1.0))
    return Instance(address=str(host["ip"]), port=int(host["port"]),
                    protocol=metadata.get("protocol"), labels=metadata,
                    weight=max(1, round(weight)) if weight > 0 else 0,
                    healthy=bool(host.get("healthy", True)) and bool(host.get("enabled", True)))
