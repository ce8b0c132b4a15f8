"""``etcd://HOST:PORT[/prefix][?layout=dubbo|json]``: providers kept in etcd v3.

Two layouts, chosen by ``layout`` (default ``dubbo``):

- ``dubbo``: Dubbo's etcd3 registry, keys ``<prefix>/<interface>/providers/<quoted provider URL>``,
  prefix ``/dubbo`` by default; parsed exactly like the ZooKeeper layout
  (:mod:`codecgen.bridge.dubbo`: service key ``interface[:group][:version]``); values ignored.
- ``json``: one key per instance, ``<prefix>/<service>/<instance-id>`` (prefix ``/services`` by
  default), the value a JSON object::

      {"address": "10.0.0.7", "port": 9000,          # required
       "protocol": "awesomerpc",                      # optional: the wire protocol
       "labels": {"version": "v1"},                   # optional: string -> string
       "weight": 10, "locality": "region/zone",       # optional
       "healthy": true}                               # optional, default true

  The service key and name are ``<service>``. A value that is not such an object is skipped and
  logged (the registry entry is bad; the rest of the service is still read).

The client is a small one over etcd's v3 HTTP/JSON gateway (``/v3/kv/range``, ``/v3/watch``,
served by etcd 3.4+) with the standard library: no gRPC, protobuf or third-party HTTP stack to
install, and the two calls it needs are small. Ranges are read in pages pinned to one revision
(a consistent snapshot). The watch tracks the last revision it delivered and resumes from it; after
a failed connection, or when etcd answers that the revision was compacted, it reads everything
again (full resync) and calls ``notify(set())``. Bursts of events are notified together
(:class:`~codecgen.bridge.sources.changes.Coalescer`).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
from typing import Dict, Iterable, List, Optional, Tuple

from codecgen.bridge import dubbo
from codecgen.bridge.model import Instance, Service, Snapshot, Source, SourceError
from codecgen.bridge.sources import urlparts
from codecgen.bridge.sources.changes import Coalescer
from codecgen.bridge.sources.httpclient import HttpClient
from codecgen.errors import UserError

log = logging.getLogger("codecgen.bridge.sources.etcd")

PAGE = 1000
LAYOUTS = {"dubbo": "/dubbo", "json": "/services"}


def from_url(url: str, name: Optional[str] = None) -> "EtcdSource":
    parts = urlparts.parse(url, 2379, known=("layout", "timeout", "idle"))
    layout = parts.one("layout", "dubbo")
    if layout not in LAYOUTS:
        raise UserError(f"--source {url}: layout={layout} is not one of {', '.join(LAYOUTS)}")
    return EtcdSource(url, name, parts.host, parts.port, parts.path.rstrip("/") or LAYOUTS[layout],
                      layout, timeout=parts.seconds("timeout", 10.0),
                      idle=parts.seconds("idle", 60.0))


class EtcdSource(Source):
    scheme = "etcd"

    def __init__(self, url: str, name: Optional[str], host: str, port: int, prefix: str,
                 layout: str, timeout: float, idle: float):
        super().__init__(url, name)
        self.prefix = prefix
        self.layout = layout
        self._idle = idle
        self._http = HttpClient(host, port, timeout=timeout)
        self._ok = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- Source ---------------------------------------------------------------------------

    def list(self) -> Snapshot:
        return self._read()[1]

    def watch(self, notify) -> None:
        self._thread = threading.Thread(target=self._run, args=(notify,),
                                        name=f"bridge-etcd-{self.name}", daemon=True)
        self._thread.start()

    def healthy(self) -> bool:
        return self._ok

    def close(self) -> None:
        self._stop.set()
        self._http.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- reading --------------------------------------------------------------------------

    def _span(self) -> Tuple[str, str]:
        start = self.prefix + "/"
        return start, start[:-1] + chr(ord(start[-1]) + 1)

    def _read(self) -> Tuple[int, Snapshot]:
        """(revision, snapshot) of the whole prefix, read in pages at one revision."""
        start, end = self._span()
        revision = 0
        kvs: List[dict] = []
        try:
            while True:
                body = {"key": _b64(start), "range_end": _b64(end), "limit": str(PAGE)}
                if revision:
                    body["revision"] = str(revision)
                answer = self._http.post("/v3/kv/range", body).body or {}
                revision = revision or int(answer.get("header", {}).get("revision", 0))
                page = answer.get("kvs", [])
                kvs.extend(page)
                if not answer.get("more") or not page:
                    break
                start = _unb64(page[-1]["key"]) + "\0"
        except SourceError:
            self._ok = False
            raise
        self._ok = True
        return revision, self._build(kvs)

    def _build(self, kvs: Iterable[dict]) -> Snapshot:
        instances: Dict[str, list] = {}
        attributes: Dict[str, Dict[str, str]] = {}
        names: Dict[str, str] = {}
        for kv in kvs:
            key = _unb64(kv["key"])
            parsed = self._parse(key, _unb64(kv.get("value", "")))
            if parsed is None:
                continue
            service_key, name, attrs, instance = parsed
            instances.setdefault(service_key, []).append(instance)
            attributes[service_key] = attrs
            names[service_key] = name
        return {key: Service(source=self.name, key=key, name=names[key], attributes=attributes[key],
                             instances=tuple(sorted(found, key=_order)))
                for key, found in instances.items()}

    def _parse(self, key: str, value: str):
        if self.layout == "dubbo":
            where = dubbo.split_path(key, self.prefix)
            provider = where and dubbo.parse_provider(where[1], where[0])
            if not provider:
                return None
            return provider.key, provider.interface, provider.attributes, provider.instance
        service = self._service_of(key)
        if service is None:
            return None
        try:
            return service, service, {}, _json_instance(value)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("etcd %s: %s: skipped: %s", self.prefix, key, exc)
            return None

    def _service_of(self, key: str) -> Optional[str]:
        rest = key[len(self.prefix) + 1:].split("/")
        return rest[0] if len(rest) == 2 and all(rest) else None

    def _keys_of(self, key: str) -> set:
        """The service keys an event on ``key`` may change."""
        if self.layout == "json":
            service = self._service_of(key)
            return {service} if service else set()
        where = dubbo.split_path(key, self.prefix)
        provider = where and dubbo.parse_provider(where[1], where[0])
        return {provider.key} if provider else set()

    # -- watching -------------------------------------------------------------------------

    def _run(self, notify) -> None:
        coalescer = Coalescer(self.name, notify)
        try:
            self._watch_loop(coalescer.add)
        finally:
            coalescer.stop()

    def _watch_loop(self, notify) -> None:
        revision: Optional[int] = None      # last revision delivered; None: resync first
        delay = 0.1
        while not self._stop.is_set():
            try:
                if revision is None:
                    revision, _ = self._read()
                    notify(set())
                revision = self._follow(revision, notify)
                delay = 0.1
            except SourceError as exc:
                if self._stop.is_set():
                    return
                self._ok = False
                log.warning("%s", exc)
                revision = None
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)

    def _follow(self, revision: int, notify) -> Optional[int]:
        """Stream events after ``revision``; return the revision to resume from (None: resync).
        An idle stream (no message for ``idle`` s) is reopened from the same revision."""
        start, end = self._span()
        request = {"create_request": {"key": _b64(start), "range_end": _b64(end),
                                      "start_revision": str(revision + 1)}}
        resp = self._http.stream("POST", "/v3/watch", request, timeout=self._idle)
        try:
            while not self._stop.is_set():
                try:
                    line = resp.readline()
                except TimeoutError:
                    return revision
                except (OSError, ValueError, AttributeError, http.client.HTTPException) as exc:
                    # a connection cut mid-chunk surfaces from http.client in several shapes
                    raise SourceError(f"etcd watch {self.prefix}: connection lost "
                                      f"({type(exc).__name__})") from None
                if not line:
                    raise SourceError(f"etcd watch {self.prefix}: stream closed by the server")
                try:
                    message = json.loads(line)
                except ValueError:
                    raise SourceError(f"etcd watch {self.prefix}: answer is not JSON") from None
                if "error" in message:
                    raise SourceError(f"etcd watch {self.prefix}: {message['error']}")
                result = message.get("result", {})
                if int(result.get("compact_revision", 0) or 0) > 0:
                    log.warning("etcd %s: revision %d compacted; full resync", self.prefix, revision)
                    return None
                if result.get("canceled"):
                    raise SourceError(f"etcd watch {self.prefix}: canceled: "
                                      f"{result.get('cancel_reason', '')}")
                self._ok = True
                keys = set()
                for event in result.get("events", []):
                    kv = event["kv"]
                    keys |= self._keys_of(_unb64(kv["key"]))
                    revision = max(revision, int(kv.get("mod_revision", revision)))
                if keys:
                    notify(keys)
            return revision
        finally:
            self._http.done(resp)


def _json_instance(text: str) -> Instance:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("value is not a JSON object")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValueError("labels is not an object")
    weight = data.get("weight")
    return Instance(address=str(data["address"]), port=int(data["port"]),
                    protocol=data.get("protocol"),
                    labels={str(k): str(v) for k, v in labels.items()},
                    weight=None if weight is None else int(weight),
                    locality=data.get("locality"), healthy=bool(data.get("healthy", True)))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8", "replace")


def _order(instance: Instance):
    return (instance.address, instance.port, instance.protocol or "")
