"""``consul://HOST:PORT[?dc=DC&wait=30s&timeout=10s]``: services in a Consul catalog.

HTTP API (documented at developer.hashicorp.com/consul/api-docs): ``GET /v1/catalog/services``
(``{name: [tags]}``) and ``GET /v1/health/service/<name>`` (one entry per instance:
``Node``, ``Service``, ``Checks``). Both are watched with blocking queries: the ``X-Consul-Index``
of one answer is sent back as ``index`` with ``wait``; an index that goes backwards resets the
watch to 0, as the documentation prescribes. Consul's own ``consul`` service is skipped.

Service key and name: the Consul service name. Instance: address ``Service.Address`` (else the
node's ``Address``), port ``Service.Port``, protocol ``Service.Meta.protocol``, labels = the
service meta plus tags of the form ``k=v`` or ``k|v`` (consul2istio's convention), weight
``Service.Weights.Passing``, healthy unless one of its checks is ``critical`` (a ``warning`` still
serves traffic, as in Consul's DNS; maintenance mode is a critical check). Consul has no
service-level metadata: the Service's ``attributes`` are the meta entries every instance shares
(e.g. consul2istio's ``external``).
"""

from __future__ import annotations

import logging
import threading
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

from codecgen.bridge.model import Instance, Service, Snapshot, Source, SourceError
from codecgen.bridge.sources import urlparts
from codecgen.bridge.sources.httpclient import HttpClient

log = logging.getLogger("codecgen.bridge.sources.consul")

SKIPPED = frozenset({"consul"})


def from_url(url: str, name: Optional[str] = None) -> "ConsulSource":
    parts = urlparts.parse(url, 8500, known=("dc", "wait", "timeout"))
    return ConsulSource(url, name, parts.host, parts.port, dc=parts.one("dc"),
                        wait=parts.seconds("wait", 30.0), timeout=parts.seconds("timeout", 10.0))


class ConsulSource(Source):
    scheme = "consul"

    def __init__(self, url: str, name: Optional[str], host: str, port: int, dc: Optional[str],
                 wait: float, timeout: float):
        super().__init__(url, name)
        self._dc = dc
        self._wait = wait
        self._timeout = timeout
        self._http = HttpClient(host, port, timeout=timeout)
        self._ok = False
        self._stop = threading.Event()
        self._threads: Dict[str, threading.Thread] = {}   # the current watcher of each key
        self._all: List[threading.Thread] = []              # every thread started, to join
        self._lock = threading.Lock()

    # -- Source ---------------------------------------------------------------------------

    def list(self) -> Snapshot:
        try:
            names, _ = self._catalog(0)
            snapshot = {}
            for service in sorted(names):
                snapshot[service] = self._service(service, self._health(service, 0)[0])
        except SourceError:
            self._ok = False
            raise
        self._ok = True
        return snapshot

    def watch(self, notify) -> None:
        self._start("", self._watch_catalog, notify)

    def healthy(self) -> bool:
        return self._ok

    def close(self) -> None:
        self._stop.set()
        self._http.close()
        with self._lock:
            threads = list(self._all)
        for thread in threads:
            thread.join(timeout=5)

    # -- reading --------------------------------------------------------------------------

    def _query(self, index: int):
        query = [("dc", self._dc)] if self._dc else []
        if index:
            query += [("index", str(index)), ("wait", f"{int(self._wait * 1000)}ms")]
        return query

    def _get(self, path: str, index: int):
        # a blocking query may hold the answer up to wait (+ wait/16 of jitter, per the docs)
        timeout = self._timeout + (self._wait * 17 / 16 if index else 0)
        answer = self._http.get(path, self._query(index), timeout=timeout)
        try:
            new_index = int(answer.headers.get("X-Consul-Index", "0"))
        except ValueError:
            new_index = 0
        return answer.body, new_index

    def _catalog(self, index: int) -> Tuple[Dict[str, list], int]:
        body, new_index = self._get("/v1/catalog/services", index)
        if not isinstance(body, dict):
            raise SourceError(f"consul {self._http.url('/v1/catalog/services')}: not an object")
        return {name: tags for name, tags in body.items() if name not in SKIPPED}, new_index

    def _health(self, service: str, index: int) -> Tuple[list, int]:
        path = f"/v1/health/service/{quote(service, safe='')}"
        body, new_index = self._get(path, index)
        if not isinstance(body, list):
            raise SourceError(f"consul {self._http.url(path)}: not a list")
        return body, new_index

    def _service(self, name: str, entries: list) -> Service:
        instances = []
        for entry in entries:
            try:
                instances.append(_instance(entry))
            except (KeyError, TypeError, ValueError) as exc:
                raise SourceError(f"consul service {name}: malformed entry ({exc})") from None
        metas = [_meta(entry) for entry in entries]
        shared = {k: v for k, v in metas[0].items() if all(m.get(k) == v for m in metas)} \
            if metas else {}
        return Service(source=self.name, key=name, name=name, attributes=shared,
                       instances=tuple(sorted(instances, key=lambda i: (i.address, i.port))))

    # -- watching -------------------------------------------------------------------------

    def _start(self, key: str, target, *args) -> None:
        with self._lock:
            if self._stop.is_set() or key in self._threads:
                return
            thread = threading.Thread(target=target, args=args, daemon=True,
                                      name=f"bridge-consul-{self.name}-{key or 'catalog'}")
            self._threads[key] = thread
            self._all.append(thread)
        thread.start()

    def _watch_catalog(self, notify) -> None:
        index, known, failed, delay = 0, None, False, 0.1
        while not self._stop.is_set():
            try:
                names, new_index = self._catalog(index)
            except SourceError as exc:
                if self._stop.is_set():
                    return
                self._ok, failed, index = False, True, 0
                log.warning("%s", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._ok, delay = True, 0.1
            index = _next_index(index, new_index)
            current = set(names)
            for service in current - (known or set()):
                self._start(f"svc/{service}", self._watch_service, service, notify)
            if known is None or failed:
                notify(set())
            elif current != known:
                notify(current ^ known)
            known, failed = current, False
            with self._lock:
                gone = [k for k in self._threads if k.startswith("svc/") and k[4:] not in current]
                for key in gone:
                    del self._threads[key]     # its thread sees the service gone and ends

    def _watch_service(self, service: str, notify) -> None:
        index, last, delay = 0, None, 0.1
        me = threading.current_thread()
        while not self._stop.is_set():
            with self._lock:
                if self._threads.get(f"svc/{service}") is not me:
                    return
            try:
                entries, new_index = self._health(service, index)
                current = self._service(service, entries)
            except SourceError as exc:
                if self._stop.is_set():
                    return
                log.debug("%s", exc)
                index = 0
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            index = _next_index(index, new_index)
            if current != last:       # the first answer notifies too: it may follow a list()
                notify({service})
            last = current


def _next_index(old: int, new: int) -> int:
    """The index for the next blocking query: reset to 0 when it went backwards, never 0
    after an answer (the documented rules that avoid missed changes and busy loops)."""
    return 0 if new < old else max(new, 1)


def _meta(entry: dict) -> dict:
    return {str(k): str(v) for k, v in (entry["Service"].get("Meta") or {}).items()}


def _instance(entry: dict) -> Instance:
    svc = entry["Service"]
    node = entry.get("Node") or {}
    meta = _meta(entry)
    labels = dict(meta)
    for tag in svc.get("Tags") or ():
        for sep in ("=", "|"):
            key, found, value = tag.partition(sep)
            if found and key:
                labels.setdefault(key, value)
                break
    weights = svc.get("Weights") or {}
    checks = entry.get("Checks") or ()
    return Instance(address=svc.get("Address") or node["Address"], port=int(svc["Port"]),
                    protocol=meta.get("protocol"), labels=labels,
                    weight=int(weights["Passing"]) if "Passing" in weights else None,
                    healthy=not any(c.get("Status") == "critical" for c in checks))
