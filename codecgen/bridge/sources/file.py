"""``file://PATH[?interval=SECONDS]``: a YAML list of services, for GitOps and demos.

::

    - name: org.apache.dubbo.demo.DemoService   # required
      key: ...                                  # default: name[:group][:version]
      namespace: ...                            # registry namespace, optional
      attributes: {group: g1, version: 1.0.0}
      instances:
        - {address: 10.0.0.1, port: 20880, protocol: dubbo, labels: {zone: a},
           weight: 100, locality: region/zone, healthy: true}

The file is read again when its modification time or size changes (polled every ``interval``
seconds, default 1).  A file that cannot be read or parsed raises :class:`SourceError` naming the
file and the entry, so the bridge keeps the last good content.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from codecgen.bridge.model import Instance, Service, Snapshot, Source, SourceError
from codecgen.errors import UserError

INSTANCE_FIELDS = {"address": str, "port": int, "protocol": str, "labels": dict, "weight": int,
                   "locality": str, "healthy": bool}
SERVICE_FIELDS = {"name": str, "key": str, "namespace": str, "attributes": dict, "instances": list}


def _fields(raw, where: str, allowed: dict, required: tuple) -> dict:
    if not isinstance(raw, dict):
        raise SourceError(f"{where}: expected a mapping, got {type(raw).__name__}")
    for key, value in raw.items():
        if key not in allowed:
            raise SourceError(f"{where}.{key}: unknown field (known: {', '.join(allowed)})")
        want = allowed[key]
        if value is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            raise SourceError(f"{where}.{key}: expected {want.__name__}, got {value!r}")
    for key in required:
        if raw.get(key) in (None, ""):
            raise SourceError(f"{where}.{key}: required")
    return raw


def _strings(raw: Optional[dict]) -> dict:
    return {str(k): "" if v is None else str(v) for k, v in (raw or {}).items()}


def parse(text: str, where: str, source: str) -> dict[str, Service]:
    """The services in ``text`` (``where`` names the file in errors)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SourceError(f"{where}: not valid YAML: {exc}") from None
    if doc is None:
        doc = []
    if not isinstance(doc, list):
        raise SourceError(f"{where}: expected a YAML list of services, got {type(doc).__name__}")
    out: dict[str, Service] = {}
    for i, raw in enumerate(doc):
        at = f"{where}: [{i}]"
        svc = _fields(raw, at, SERVICE_FIELDS, ("name",))
        attributes = _strings(svc.get("attributes"))
        instances = []
        for j, inst in enumerate(svc.get("instances") or []):
            inst = _fields(inst, f"{at}.instances[{j}]", INSTANCE_FIELDS, ("address", "port"))
            if not 0 < inst["port"] < 65536:
                raise SourceError(f"{at}.instances[{j}].port: {inst['port']} is not a port (1..65535)")
            instances.append(Instance(address=inst["address"], port=inst["port"],
                                      protocol=inst.get("protocol"), labels=_strings(inst.get("labels")),
                                      weight=inst.get("weight"), locality=inst.get("locality"),
                                      healthy=inst.get("healthy", True)))
        key = svc.get("key") or ":".join(p for p in (svc["name"], attributes.get("group"),
                                                     attributes.get("version")) if p)
        if key in out:
            raise SourceError(f"{at}.key: {key!r} already used by another entry")
        out[key] = Service(source=source, key=key, name=svc["name"], namespace=svc.get("namespace"),
                           attributes=attributes, instances=tuple(instances))
    return out


class FileSource(Source):
    scheme = "file"

    def __init__(self, url: str, name: Optional[str] = None):
        super().__init__(url, name)
        parts = urlsplit(url)
        self.path = Path(unquote(parts.netloc + parts.path))
        query = parse_qs(parts.query)
        try:
            self.interval = float(query.get("interval", ["1"])[0])
        except ValueError:
            raise UserError(f"--source {url}: interval must be a number of seconds") from None
        if not parts.path or self.interval <= 0:
            raise UserError(f"--source {url}: expected file:///PATH/TO/services.yaml[?interval=SECONDS]")
        self._ok = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _stat(self):
        try:
            st = os.stat(self.path)
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def list(self) -> Snapshot:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._ok = False
            raise SourceError(f"{self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            snapshot = parse(text, str(self.path), self.name)
        except SourceError:
            self._ok = False
            raise
        self._ok = True
        return snapshot

    def healthy(self) -> bool:
        return self._ok

    def watch(self, notify: Callable[[set], None]) -> None:
        def poll():
            last = self._stat()
            while not self._stop.wait(self.interval):
                now = self._stat()
                if now != last:
                    last = now
                    notify(set())

        self._thread = threading.Thread(target=poll, name=f"file-source-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def from_url(url: str, name: Optional[str] = None) -> Source:
    return FileSource(url, name)
