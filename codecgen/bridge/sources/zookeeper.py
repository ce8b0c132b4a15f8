"""``zookeeper://HOST:PORT[/root][?session_timeout=10s&connect_timeout=5s]``: Dubbo providers.

Layout (Dubbo's ZooKeeper registry): ``/<root>/<interface>/providers/<quoted provider URL>``,
root ``/dubbo`` by default. ``config``, ``metadata`` and ``mapping`` under the root and every
node that is not a provider URL (consumers, rules) are skipped; see :mod:`codecgen.bridge.dubbo`
for the URL parsing and the service key ``interface[:group][:version]``.

A service whose providers all vanished (e.g. their sessions expired) is reported with zero
instances for as long as its ``providers`` node exists, so the reconciler sees "n -> 0" rather
than a service that disappeared. The source's own session is watched: ``list()`` raises
:class:`SourceError` while it is SUSPENDED or LOST; kazoo reconnects by itself, and after every
reconnect the watches are armed again and ``notify(set())`` is called.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Dict, Optional, Set

from codecgen.bridge import dubbo
from codecgen.bridge.model import Service, Snapshot, Source, SourceError
from codecgen.bridge.sources import urlparts
from codecgen.errors import UserError

try:
    from kazoo.client import KazooClient, KazooState
    from kazoo.exceptions import KazooException, NoNodeError
    from kazoo.handlers.threading import KazooTimeoutError
except ImportError:          # the optional dependency: refused in from_url with the fix
    KazooClient = None

log = logging.getLogger("codecgen.bridge.sources.zookeeper")

COALESCE = 0.05       # seconds the watch thread waits to gather a burst of events into one notify
OP_TIMEOUT = 10.0     # seconds for one ZooKeeper read


def from_url(url: str, name: Optional[str] = None) -> "ZooKeeperSource":
    parts = urlparts.parse(url, 2181, known=("session_timeout", "connect_timeout"))
    if KazooClient is None:
        raise UserError(f"--source {url}: the zookeeper source needs kazoo "
                        "(pip install 'codecgen[bridge]')")
    return ZooKeeperSource(url, name, f"{parts.host}:{parts.port}",
                           root=parts.path.rstrip("/") or "/dubbo",
                           session_timeout=parts.seconds("session_timeout", 10.0),
                           connect_timeout=parts.seconds("connect_timeout", 5.0))


class ZooKeeperSource(Source):
    scheme = "zookeeper"

    def __init__(self, url: str, name: Optional[str], hosts: str, root: str,
                 session_timeout: float, connect_timeout: float):
        super().__init__(url, name)
        self.hosts = hosts
        self.root = root
        self._session_timeout = session_timeout
        self._connect_timeout = connect_timeout
        self._client: Optional[KazooClient] = None
        self._state = "LOST"         # KazooState.LOST
        self._ever_connected = False
        self._ok = False
        self._lock = threading.RLock()
        # interface -> {key: attributes} of every service seen while its providers node exists
        self._seen: Dict[str, Dict[str, Dict[str, str]]] = {}
        self._watched: Dict[str, Set[str]] = {}     # interface -> keys at its last read
        self._events: "queue.Queue" = queue.Queue()
        self._notify = None
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # -- Source ---------------------------------------------------------------------------

    def list(self) -> Snapshot:
        client = self._connect()
        try:
            self._check_session()
            snapshot = self._read_all(client)
            self._check_session()          # a session lost mid-read: the read may be partial
        except SourceError:
            self._ok = False
            raise
        self._ok = True
        return snapshot

    def watch(self, notify) -> None:
        self._notify = notify
        self._worker = threading.Thread(target=self._run, name=f"bridge-zk-{self.name}", daemon=True)
        self._worker.start()
        self._events.put(("arm", None))

    def healthy(self) -> bool:
        return self._ok and self._state == KazooState.CONNECTED

    @property
    def client(self) -> Optional["KazooClient"]:
        """The source's own kazoo client once connected (its session is the bridge's session)."""
        return self._client

    def close(self) -> None:
        self._stop.set()
        self._events.put(("stop", None))
        if self._worker is not None:
            self._worker.join(timeout=5)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.stop()
            client.close()

    # -- connection -----------------------------------------------------------------------

    def _where(self) -> str:
        return f"zookeeper {self.hosts}{self.root}"

    def _connect(self) -> KazooClient:
        with self._lock:
            if self._client is not None:
                return self._client
            if self._stop.is_set():
                raise SourceError(f"{self._where()}: source closed")
            client = KazooClient(hosts=self.hosts, timeout=self._session_timeout,
                                 connection_retry=dict(max_tries=-1, delay=0.1, backoff=2,
                                                       max_delay=1.0))
            client.add_listener(self._on_state)
            try:
                client.start(timeout=self._connect_timeout)
            except (KazooException, KazooTimeoutError, OSError) as exc:
                self._ok = False
                client.remove_listener(self._on_state)
                client.close()
                raise SourceError(f"{self._where()}: cannot connect: {exc}") from None
            self._client = client
            return client

    def _check_session(self) -> None:
        if self._state != KazooState.CONNECTED:
            raise SourceError(f"{self._where()}: session {self._state}")

    def _on_state(self, state: str) -> None:
        """Kazoo's connection thread: record, and queue a resync after a reconnect."""
        previous, self._state = self._state, state
        if state != KazooState.CONNECTED:
            self._ok = False
            if not self._stop.is_set():          # closing the source ends its session: no news
                log.warning("%s: session %s", self._where(), state)
        elif self._ever_connected and previous != KazooState.CONNECTED:
            self._events.put(("resync", None))
        if state == KazooState.CONNECTED:
            self._ever_connected = True

    # -- reading --------------------------------------------------------------------------

    def _children(self, client: KazooClient, path: str, watch=None):
        return self._wait(client.get_children_async(path, watch=watch), path)

    def _wait(self, result, path: str):
        try:
            return result.get(timeout=OP_TIMEOUT)
        except NoNodeError:
            raise
        except (KazooException, KazooTimeoutError, OSError) as exc:
            raise SourceError(f"{self._where()}: reading {path}: "
                              f"{type(exc).__name__} {exc}".rstrip()) from None

    def _providers_path(self, interface: str) -> str:
        return f"{self.root}/{interface}/providers"

    def _request(self, client: KazooClient, interface: str, watch=None):
        return client.get_children_async(self._providers_path(interface), watch=watch)

    def _interface_services(self, client: KazooClient, interface: str, request,
                            watch=None) -> Optional[Dict]:
        """{key: Service} for one interface from its pending children request (None when it
        has no providers node)."""
        path = self._providers_path(interface)
        try:
            nodes = self._wait(request, path)
        except NoNodeError:
            if watch is not None:      # be told when the providers node appears
                self._wait(client.exists_async(path, watch=watch), path)
            with self._lock:
                self._seen.pop(interface, None)
            return None
        grouped: Dict[str, list] = {}
        attrs: Dict[str, Dict[str, str]] = {}
        for node in nodes:
            provider = dubbo.parse_provider(node, interface)
            if provider is None:
                continue
            grouped.setdefault(provider.key, []).append(provider.instance)
            attrs[provider.key] = provider.attributes
        with self._lock:
            seen = self._seen.setdefault(interface, {})
            seen.update(attrs)
            known = dict(seen)
        return {key: Service(source=self.name, key=key, name=interface, attributes=known[key],
                             instances=tuple(sorted(grouped.get(key, ()), key=_order)))
                for key in known}

    def _read_all(self, client: KazooClient) -> Snapshot:
        try:
            interfaces = self._children(client, self.root)
        except NoNodeError:
            return {}
        # every request sent before any answer is awaited: one round trip, not one per interface
        requests = {interface: self._request(client, interface)
                    for interface in sorted(set(interfaces) - dubbo.NON_SERVICE_CHILDREN)}
        snapshot: Dict[str, Service] = {}
        for interface, request in requests.items():
            snapshot.update(self._interface_services(client, interface, request) or {})
        return snapshot

    # -- watching -------------------------------------------------------------------------

    def _on_root_event(self, event) -> None:
        if event.type != "NONE":
            self._events.put(("root", None))

    def _on_interface_event(self, event) -> None:
        if event.type == "NONE":      # watches reset by a disconnect; the resync re-arms them
            return
        parts = event.path[len(self.root) + 1:].split("/")
        self._events.put(("interface", parts[0]))

    def _run(self) -> None:
        while not self._stop.is_set():
            kind, arg = self._events.get()
            if kind == "stop":
                return
            self._stop.wait(COALESCE)
            batch = [(kind, arg)]
            while True:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            if any(k == "stop" for k, _ in batch):
                return
            try:
                self._handle(batch)
            except (SourceError, KazooException, KazooTimeoutError) as exc:
                self._ok = False
                log.warning("%s: watch: %s", self._where(), exc)
                # never connected yet: keep trying; a read that failed while connected: arm
                # everything again; otherwise the reconnect queues the resync itself
                if self._client is None or self._state == KazooState.CONNECTED:
                    self._stop.wait(self._connect_timeout / 5)
                    self._events.put(("arm" if self._client is None else "resync", None))

    def _handle(self, batch) -> None:
        kinds = {kind for kind, _ in batch}
        client = self._connect()
        keys: Set[str] = set()
        full = bool(kinds & {"arm", "resync"})
        interfaces = {arg for kind, arg in batch if kind == "interface"}
        if full or "root" in kinds:
            try:
                current = set(self._children(client, self.root, self._on_root_event))
            except NoNodeError:
                self._wait(client.exists_async(self.root, watch=self._on_root_event), self.root)
                current = set()
            current -= dubbo.NON_SERVICE_CHILDREN
            gone = set(self._watched) - current
            for interface in gone:
                keys |= self._watched.pop(interface)
                with self._lock:
                    self._seen.pop(interface, None)
            interfaces |= current if full else current - set(self._watched)
        requests = {interface: self._request(client, interface, self._on_interface_event)
                    for interface in sorted(interfaces)}
        for interface, request in requests.items():
            services = self._interface_services(client, interface, request,
                                                self._on_interface_event) or {}
            keys |= self._watched.get(interface, set()) | set(services)
            self._watched[interface] = set(services)
        self._ok = True
        if self._notify is None:
            return
        if full:        # first arming or a reconnect: anything may have changed meanwhile
            self._notify(set())
        elif keys:
            self._notify(keys)


def _order(instance):
    return (instance.address, instance.port, instance.protocol or "")
