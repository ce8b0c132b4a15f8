"""``polaris://HOST:PORT[?namespace=NS&service=S[,S2]&interval=10s&timeout=10s]``: Polaris naming.

Polaris's naming HTTP API (polarismesh.cn, "接口文档", port 8090): ``GET /naming/v1/services``
(``namespace``, ``offset``, ``limit`` -> ``{"code": 200000, "amount": N, "services": [{"name",
"namespace", ...}]}``) and ``GET /naming/v1/instances`` (``namespace``, ``service``, ``offset``,
``limit`` -> ``{"code": 200000, "amount": N, "instances": [{"host", "port", "protocol",
"version", "weight", "healthy", "isolate", "metadata", "location": {"region", "zone", "campus"}}]}``).
A ``code`` other than 200000 is an error. Polled every ``interval``. Namespace ``default`` unless
given; ``service`` limits the source to the services named (the polaris2istio template pattern
names them), otherwise every service of the namespace is read. No auth token is sent.

Service key ``<namespace>/<service>``; name ``<service>``; namespace the Polaris namespace;
attributes the service's metadata (from the service list).
Instance: address ``host``, port, protocol (None when empty), labels = metadata (plus ``version``
from the instance's version field when the metadata has none), weight, locality
``region/zone/campus`` (as far as given), healthy = ``healthy`` and not ``isolate``.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from codecgen.bridge.model import Instance, Service, Snapshot, SourceError
from codecgen.bridge.sources import urlparts
from codecgen.bridge.sources.changes import PolledHttpSource

PAGE = 100
OK = 200000


def from_url(url: str, name: Optional[str] = None) -> "PolarisSource":
    parts = urlparts.parse(url, 8090, known=("namespace", "service", "interval", "timeout"))
    return PolarisSource(url, name, parts.host, parts.port,
                         namespace=parts.one("namespace", "default"),
                         services=parts.many("service"),
                         interval=parts.seconds("interval", 10.0),
                         timeout=parts.seconds("timeout", 10.0))


class PolarisSource(PolledHttpSource):
    scheme = "polaris"

    def __init__(self, url: str, name: Optional[str], host: str, port: int, namespace: str,
                 services: List[str], interval: float, timeout: float):
        super().__init__(url, name, host, port, interval, timeout)
        self.namespace = namespace
        self.services = services

    def read(self) -> Snapshot:
        try:
            listed = {s["name"]: s.get("metadata") or {}
                      for s in self._paged("/naming/v1/services", {}, "services")}
            snapshot: Dict[str, Service] = {}
            for service in self.services or sorted(listed):
                found = self._service(service, listed.get(service, {}))
                snapshot[found.key] = found
        except (KeyError, TypeError) as exc:
            raise SourceError(f"polaris namespace {self.namespace}: malformed answer ({exc})") from None
        return snapshot

    def _paged(self, path: str, query: Dict[str, str], field: str) -> List[dict]:
        items: List[dict] = []
        while True:
            params = dict(query, namespace=self.namespace, offset=len(items), limit=PAGE)
            body = self._http.get(path, params).body
            if not isinstance(body, dict) or int(body.get("code", 0)) != OK:
                info = body.get("info") if isinstance(body, dict) else None
                raise SourceError(f"polaris {self._http.url(path, params)}: "
                                  f"code {body.get('code') if isinstance(body, dict) else '?'}"
                                  + (f": {info}" if info else ""))
            page = body.get(field) or []
            items.extend(page)
            if not page or len(items) >= int(body.get("amount", 0)):
                return items

    def _service(self, service: str, metadata: dict) -> Service:
        found = self._paged("/naming/v1/instances", {"service": service}, "instances")
        try:
            instances = [_instance(item) for item in found]
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"polaris service {self.namespace}/{service}: "
                              f"malformed instance ({exc})") from None
        return Service(source=self.name, key=f"{self.namespace}/{service}", name=service,
                       namespace=self.namespace,
                       attributes={str(k): str(v) for k, v in metadata.items()},
                       instances=tuple(sorted(instances, key=lambda i: (i.address, i.port))))


def _instance(item: dict) -> Instance:
    labels = {str(k): str(v) for k, v in (item.get("metadata") or {}).items()}
    if item.get("version") and "version" not in labels:
        labels["version"] = str(item["version"])
    location = item.get("location") or {}
    parts = [str(location.get(k) or "") for k in ("region", "zone", "campus")]
    while parts and not parts[-1]:
        parts.pop()
    weight = item.get("weight")
    return Instance(address=str(item["host"]), port=int(item["port"]),
                    protocol=item.get("protocol") or None, labels=labels,
                    weight=None if weight is None else int(weight),
                    locality="/".join(parts) or None,
                    healthy=bool(item.get("healthy", True)) and not bool(item.get("isolate", False)))
