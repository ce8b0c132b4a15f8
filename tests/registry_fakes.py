"""HTTP FAKES of the Consul, Nacos and Polaris APIs the bridge's sources use (these servers cannot
run offline here). Each implements only those endpoints, with the request parameters and answer
shapes of the vendors' documentation, and state that tests change through plain methods:

- :class:`FakeConsul`: ``GET /v1/catalog/services`` and ``GET /v1/health/service/<name>`` with
  blocking-query semantics (``X-Consul-Index`` on every answer; with ``index`` and ``wait`` the
  request is held until the resource's index passes ``index`` or ``wait`` runs out, then the
  current state is answered). A service with no instance left leaves the catalog, as in Consul.
- :class:`FakeNacos`: ``GET /nacos/v1/ns/service/list`` (pageNo/pageSize required) and
  ``GET /nacos/v1/ns/instance/list`` (serviceName required; healthyOnly honoured).
- :class:`FakePolaris`: ``GET /naming/v1/services`` and ``GET /naming/v1/instances`` (offset /
  limit paging, ``code`` 200000 on success, 400-class codes and HTTP 400 on bad requests).

Every fake serves on 127.0.0.1 on a free port; ``fail_with = 500`` makes every request answer that
status, ``stop()`` makes the server unreachable (``start()`` again on the same port).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fake.requests.append((parts.path, query))
        if fake.fail_with:
            status, headers, body = fake.fail_with, {}, b"fake failure"
        else:
            status, headers, body = fake.handle(unquote(parts.path), query)
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = dict(headers, **{"Content-Type": "application/json"})
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass        # the client gave up (a source closed mid blocking query)

    def log_message(self, *args):
        pass


class FakeServer:
    def __init__(self):
        self.port = 0
        self.fail_with: Optional[int] = None
        self.requests: List[Tuple[str, Dict[str, str]]] = []
        self.changed = threading.Condition()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "FakeServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
        with self.changed:
            self.changed.notify_all()

    def handle(self, path: str, query: Dict[str, str]):
        return 404, {}, b"not found"


def _duration(text: str) -> float:
    """Consul's duration strings: ``10s``, ``5m``, ``250ms``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


class FakeConsul(FakeServer):
    """Consul's catalog, one datacenter. ``register``/``deregister``/``set_status`` bump indexes."""

    def __init__(self):
        super().__init__()
        self.index = 1
        self.catalog_index = 1
        self.services: Dict[str, Dict] = {}     # name -> {"index": int, "entries": {id: entry}}

    def register(self, service: str, sid: str, address: str, port: int, tags=(), meta=None,
                 weights=None, status: str = "passing", node: str = "node-1",
                 node_address: str = "192.0.2.1") -> None:
        entry = {"Node": {"Node": node, "Address": node_address, "Datacenter": "dc1"},
                 "Service": {"ID": sid, "Service": service, "Tags": list(tags), "Address": address,
                             "Port": port, "Meta": dict(meta or {}),
                             "Weights": dict(weights or {"Passing": 1, "Warning": 1})},
                 "Checks": [{"Node": node, "CheckID": f"service:{sid}", "Status": status,
                             "ServiceID": sid, "ServiceName": service}]}
        with self.changed:
            self.index += 1
            record = self.services.setdefault(service, {"index": self.index, "entries": {}})
            if sid not in record["entries"]:
                self.catalog_index = self.index
            record["entries"][sid] = entry
            record["index"] = self.index
            self.changed.notify_all()

    def deregister(self, service: str, sid: str) -> None:
        with self.changed:
            self.index += 1
            record = self.services[service]
            del record["entries"][sid]
            record["index"] = self.catalog_index = self.index
            self.changed.notify_all()

    def set_status(self, service: str, sid: str, status: str) -> None:
        with self.changed:
            self.index += 1
            record = self.services[service]
            record["entries"][sid]["Checks"][0]["Status"] = status
            record["index"] = self.index
            self.changed.notify_all()

    def handle(self, path, query):
        if path == "/v1/catalog/services":
            current = lambda: self.catalog_index  # noqa: E731
            answer = lambda: {name: sorted({t for e in r["entries"].values()  # noqa: E731
                                            for t in e["Service"]["Tags"]})
                              for name, r in self.services.items() if r["entries"]}
        elif path.startswith("/v1/health/service/"):
            name = path[len("/v1/health/service/"):]
            current = lambda: self.services.get(name, {}).get("index", self.catalog_index)  # noqa
            answer = lambda: [json.loads(json.dumps(e)) for _, e in  # noqa: E731
                              sorted(self.services.get(name, {}).get("entries", {}).items())]
        else:
            return 404, {}, b"404 page not found"
        try:
            wait = min(_duration(query.get("wait", "5m")), 600.0)
            index = int(query.get("index", "0"))
        except ValueError:
            return 400, {}, b"Invalid wait time or index"
        deadline = time.monotonic() + wait
        with self.changed:
            while index and current() <= index and self._httpd is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return 200, {"X-Consul-Index": str(current())}, answer()


class FakeNacos(FakeServer):
    """Nacos naming: namespace id -> group -> service -> [host]."""

    def __init__(self):
        super().__init__()
        self.data: Dict[str, Dict[str, Dict[str, List[dict]]]] = {}

    def add_service(self, service: str, group: str = "DEFAULT_GROUP", namespace: str = "public"):
        with self.changed:
            self.data.setdefault(namespace, {}).setdefault(group, {}).setdefault(service, [])

    def add_instance(self, service: str, ip: str, port: int, group: str = "DEFAULT_GROUP",
                     namespace: str = "public", weight: float = 1.0, healthy: bool = True,
                     enabled: bool = True, metadata=None) -> None:
        self.add_service(service, group, namespace)
        grouped = f"{group}@@{service}"
        host = {"instanceId": f"{ip}#{port}#DEFAULT#{grouped}", "ip": ip, "port": port,
                "weight": weight, "healthy": healthy, "enabled": enabled, "ephemeral": True,
                "clusterName": "DEFAULT", "serviceName": grouped, "metadata": dict(metadata or {}),
                "instanceHeartBeatInterval": 5000, "instanceIdGenerator": "simple",
                "instanceHeartBeatTimeOut": 15000, "ipDeleteTimeout": 30000}
        with self.changed:
            hosts = self.data[namespace][group][service]
            hosts[:] = [h for h in hosts if (h["ip"], h["port"]) != (ip, port)] + [host]

    def remove_instance(self, service: str, ip: str, port: int, group: str = "DEFAULT_GROUP",
                        namespace: str = "public") -> None:
        with self.changed:
            hosts = self.data[namespace][group][service]
            hosts[:] = [h for h in hosts if (h["ip"], h["port"]) != (ip, port)]

    def handle(self, path, query):
        namespace = query.get("namespaceId") or "public"
        group = query.get("groupName") or "DEFAULT_GROUP"
        with self.changed:
            services = self.data.get(namespace, {}).get(group, {})
            if path == "/nacos/v1/ns/service/list":
                try:
                    page, size = int(query["pageNo"]), int(query["pageSize"])
                except (KeyError, ValueError):
                    return 400, {}, b"caused: Param 'pageNo' or 'pageSize' is required or invalid;"
                names = sorted(services)
                return 200, {}, {"count": len(names), "doms": names[(page - 1) * size:page * size]}
            if path == "/nacos/v1/ns/instance/list":
                service = query.get("serviceName")
                if not service:
                    return 400, {}, b"caused: Param 'serviceName' is required;"
                if service not in services:
                    return 404, {}, f"caused: service not found: {group}@@{service};".encode()
                hosts = [dict(h) for h in services[service]]
                if query.get("healthyOnly") == "true":
                    hosts = [h for h in hosts if h["healthy"]]
                return 200, {}, {"name": f"{group}@@{service}", "groupName": group, "clusters": "",
                                 "cacheMillis": 10000, "hosts": hosts,
                                 "lastRefTime": int(time.time() * 1000), "checksum": "",
                                 "allIPs": False, "reachProtectionThreshold": False,
                                 "valid": True}
        return 404, {}, b"not found"


class FakePolaris(FakeServer):
    """Polaris naming: namespace -> service -> [instance]."""

    def __init__(self):
        super().__init__()
        self.data: Dict[str, Dict[str, List[dict]]] = {}
        self.metadata: Dict[Tuple[str, str], dict] = {}

    def add_service(self, service: str, namespace: str = "default", metadata=None) -> None:
        with self.changed:
            self.data.setdefault(namespace, {}).setdefault(service, [])
            if metadata is not None:
                self.metadata[namespace, service] = dict(metadata)

    def add_instance(self, service: str, host: str, port: int, namespace: str = "default",
                     protocol: str = "", version: str = "", weight: int = 100,
                     healthy: bool = True, isolate: bool = False, metadata=None,
                     location=None) -> None:
        self.add_service(service, namespace)
        item = {"id": f"{namespace}-{service}-{host}-{port}", "service": service,
                "namespace": namespace, "host": host, "port": port, "protocol": protocol,
                "version": version, "weight": weight, "healthy": healthy, "isolate": isolate,
                "metadata": dict(metadata or {}), "location": dict(location or {})}
        with self.changed:
            items = self.data[namespace][service]
            items[:] = [i for i in items if (i["host"], i["port"]) != (host, port)] + [item]

    def remove_instance(self, service: str, host: str, port: int, namespace: str = "default"):
        with self.changed:
            items = self.data[namespace][service]
            items[:] = [i for i in items if (i["host"], i["port"]) != (host, port)]

    def handle(self, path, query):
        try:
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        except ValueError:
            return 400, {}, {"code": 400001, "info": "invalid parameter"}
        namespace = query.get("namespace")
        with self.changed:
            if path == "/naming/v1/services":
                pairs = sorted((ns, n) for ns, services in self.data.items() for n in services
                               if ns == namespace or not namespace)
                items = [{"name": n, "namespace": ns, "metadata": self.metadata.get((ns, n), {})}
                         for ns, n in pairs]
                page = items[offset:offset + limit]
                return 200, {}, {"code": 200000, "info": "execute success", "amount": len(items),
                                 "size": len(page), "services": page}
            if path == "/naming/v1/instances":
                service = query.get("service")
                if not service or not namespace:
                    return 400, {}, {"code": 400002, "info": "invalid service or namespace"}
                if service not in self.data.get(namespace, {}):
                    return 400, {}, {"code": 400202, "info": "not found service"}
                items = [dict(i) for i in self.data[namespace][service]]
                page = items[offset:offset + limit]
                return 200, {}, {"code": 200000, "info": "execute success", "amount": len(items),
                                 "size": len(page), "instances": page}
        return 404, {}, b"404 page not found"
