"""Change detection shared by the sources: snapshot diffs and a polling watcher."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from codecgen.bridge.model import Snapshot, Source, SourceError
from codecgen.bridge.sources.httpclient import HttpClient

log = logging.getLogger("codecgen.bridge.sources")


def changed_keys(old: Snapshot, new: Snapshot) -> set:
    """Keys added, removed, or whose Service differs between two snapshots."""
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


class Poller:
    """Calls ``read()`` (a full snapshot read) at once and then every ``interval`` seconds on a
    thread, and ``notify``-s the keys that changed. The first good read, and the first good read
    after a failure (the registry came back), notify ``set()``: a resync, as the Source contract
    asks once watching starts and after a reconnect. A failed read notifies nothing and keeps the
    last good snapshot for the next comparison."""

    def __init__(self, name: str, read: Callable[[], Snapshot], interval: float,
                 notify: Callable[[set], None]):
        self._read = read
        self._interval = interval
        self._notify = notify
        self._last: Optional[Snapshot] = None
        self._failed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-poll-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = 0.0
        while not self._stop.wait(wait):
            wait = self._interval
            try:
                snapshot = self._read()
            except SourceError as exc:
                if not self._failed:
                    log.warning("%s", exc)
                self._failed = True
                continue
            if self._stop.is_set():
                return
            resync = self._failed or self._last is None
            keys = set() if resync else changed_keys(self._last, snapshot)
            self._failed = False
            self._last = snapshot
            if resync or keys:
                self._notify(keys)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class Coalescer:
    """Gathers the keys of a burst of changes and notifies them once per ``window`` seconds,
    from its own thread (a provider flapping 100 times a second costs a handful of calls). A
    resync (``add(set())``) pending in the window is notified as ``set()``, which covers all keys."""

    def __init__(self, name: str, notify: Callable[[set], None], window: float = 0.05):
        self._notify = notify
        self._window = window
        self._keys: set = set()
        self._resync = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-coalesce-{name}",
                                        daemon=True)
        self._thread.start()

    def add(self, keys: set) -> None:
        with self._lock:
            if keys:
                self._keys |= keys
            else:
                self._resync = True
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self._window)
            with self._lock:
                keys, resync = self._keys, self._resync
                self._keys, self._resync = set(), False
                self._wake.clear()
            if self._stop.is_set():
                return
            self._notify(set() if resync else keys)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class PolledHttpSource(Source):
    """A registry read over HTTP by full snapshots on an interval (Nacos v1, Polaris): the
    subclass reads one snapshot in ``read()`` (raising :class:`SourceError`); this class keeps
    the health, the poller and the HTTP client."""

    def __init__(self, url: str, name: Optional[str], host: str, port: int, interval: float,
                 timeout: float):
        super().__init__(url, name)
        self._interval = interval
        self._http = HttpClient(host, port, timeout=timeout)
        self._ok = False
        self._poller: Optional[Poller] = None

    def read(self) -> Snapshot:
        raise NotImplementedError

    def list(self) -> Snapshot:
        try:
            snapshot = self.read()
        except SourceError:
            self._ok = False
            raise
        self._ok = True
        return snapshot

    def watch(self, notify) -> None:
        self._poller = Poller(self.name, self.list, self._interval, notify)

    def healthy(self) -> bool:
        return self._ok

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        self._http.close()
