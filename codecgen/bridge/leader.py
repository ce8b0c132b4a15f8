"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go does it.

The holder renews ``spec.renewTime`` every ``renew`` seconds.  Another replica takes the lease
over when the record it last saw has not changed for ``spec.leaseDurationSeconds`` *by its own
clock* (so clocks that disagree do not matter).  Every write is a replace with the
resourceVersion last read: of two replicas racing, one gets 409 and stays a follower.  A leader
that has not renewed within the lease duration stops calling itself leader before anyone else
can take over (after 2/3 of the duration, client-go's renew deadline).  ``release()`` (on shutdown) empties the holder so a follower takes over at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Callable, Optional

from codecgen.bridge.kube import ApiError, Kube
from codecgen.bridge.observe import event


def _micro_time() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, *, duration: float = 15.0,
                 renew: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool], None] = lambda leader: None):
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew, self.clock, self.on_change = duration, renew, clock, on_change
        self._observed: Optional[tuple] = None       # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._renewed_at: Optional[float] = None     # when we last renewed successfully
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._was_leader = False

    def is_leader(self) -> bool:
        return self._renewed_at is not None and self.clock() - self._renewed_at < self.duration * 2 / 3

    def _lease(self, holder: str, acquire: Optional[str], rv: Optional[str] = None) -> dict:
        now = _micro_time()
        meta = {"name": self.name, "namespace": self.namespace}
        if rv:
            meta["resourceVersion"] = rv
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": int(round(self.duration)),
                         "acquireTime": acquire or now, "renewTime": now}}

    def try_once(self) -> bool:
        """One acquire-or-renew round; whether this replica leads afterwards."""
        try:
            lease = self.kube.get("Lease", self.namespace, self.name)
            if lease is None:
                self.kube.create(self._lease(self.identity, None))
                self._won()
            else:
                spec = lease.get("spec") or {}
                holder = spec.get("holderIdentity") or ""
                record = (holder, spec.get("renewTime"))
                if record != self._observed:
                    self._observed, self._observed_at = record, self.clock()
                expired = self.clock() - self._observed_at >= float(spec.get("leaseDurationSeconds") or 0)
                if holder == self.identity or not holder or expired:
                    acquire = spec.get("acquireTime") if holder == self.identity else None
                    self.kube.replace(self._lease(self.identity, acquire, lease["metadata"].get("resourceVersion")))
                    self._won()
        except ApiError as exc:
            if exc.status != 409:
                event(logging.WARNING, "lease round failed", lease=f"{self.namespace}/{self.name}",
                      error=exc.describe())
        self._notify()
        return self.is_leader()

    def _won(self) -> None:
        self._renewed_at = self.clock()

    def _notify(self) -> None:
        leader = self.is_leader()
        if leader != self._was_leader:
            self._was_leader = leader
            event(logging.INFO, "became leader" if leader else "lost leadership", identity=self.identity)
            self.on_change(leader)

    def start(self) -> None:
        def loop():
            while True:
                self.try_once()
                if self._stop.wait(self.renew if self.is_leader() else self.renew / 2):
                    return

        self._thread = threading.Thread(target=loop, name="bridge-leader", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop; if leading, hand the lease back (holder emptied) so another replica takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.is_leader():
            try:
                lease = self.kube.get("Lease", self.namespace, self.name)
                if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    body = self._lease("", None, lease["metadata"].get("resourceVersion"))
                    body["spec"]["leaseDurationSeconds"] = 1
                    self.kube.replace(body)
            except ApiError as exc:
                event(logging.WARNING, "lease release failed", error=exc.describe())
        self._renewed_at = None
        self._notify()
