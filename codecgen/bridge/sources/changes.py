"""Change detection shared by the sources: snapshot diffs and a polling watcher."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from codecgen.bridge.model import Snapshot, SourceError

log = logging.getLogger("codecgen.bridge.sources")


def changed_keys(old: Snapshot, new: Snapshot) -> set:
    """Keys added, removed, or whose Service differs between two snapshots."""
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


class Poller:
    """Calls ``read()`` (a full snapshot read) every ``interval`` seconds on a thread and
    ``notify``-s the keys that changed. A failed read notifies nothing and keeps the last good
    snapshot for the next comparison; the first good read after a failure notifies ``set()``
    (resync: the registry came back), as the Source contract asks after a reconnect."""

    def __init__(self, name: str, read: Callable[[], Snapshot], interval: float,
                 notify: Callable[[set], None], last: Optional[Snapshot] = None):
        self._read = read
        self._interval = interval
        self._notify = notify
        self._last = last
        self._failed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-poll-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
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
