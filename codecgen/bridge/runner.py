"""``bridge once`` (one pass, YAML out) and ``bridge run`` (the long-running reconciler)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from codecgen.bridge.config import SourceOptions
from codecgen.bridge.kube import ApiError, Kube
from codecgen.bridge.leader import LeaderElector
from codecgen.bridge.mapping import Mapper
from codecgen.bridge.model import Source
from codecgen.bridge.observe import HealthServer, Metrics, event
from codecgen.bridge.reconcile import Reconciler
from codecgen.bridge.sources import open_source
from codecgen.errors import UserError


@dataclass
class Settings:
    sources: Sequence[SourceOptions]
    protocols: Sequence[str]               # protocol names (see config.load_protocols)
    debounce: float = 1.0                  # quiet time after a change before it is applied
    max_delay: float = 10.0                # ... but never later than this after the first change
    resync: float = 300.0                  # full resync interval
    grace: float = 60.0                    # empty protection / deletion delay
    lease_namespace: Optional[str] = None  # None: no leader election (a single replica)
    lease_name: str = "codecgen-bridge"
    lease_duration: float = 15.0
    listen: Optional[tuple[str, int]] = ("0.0.0.0", 8080)


def open_sources(settings: Settings) -> list[tuple[SourceOptions, Source]]:
    return [(o, open_source(o.url, o.name)) for o in settings.sources]


def _reconciler(settings: Settings, sources, kube: Optional[Kube], metrics: Metrics, **kw) -> Reconciler:
    mapper = Mapper({o.name: o for o, _ in sources}, settings.protocols)
    return Reconciler(sources, mapper, kube, metrics, grace=settings.grace, **kw)


def once(settings: Settings, sources=None) -> dict[str, str]:
    """One pass without a cluster: {relative file name: YAML} of every object, validated."""
    import yaml

    from codecgen.backends.k8s.validate import BUILTIN_PROTOCOLS, validate

    sources = sources if sources is not None else open_sources(settings)
    try:
        rec = _reconciler(settings, sources, None, Metrics())
        rec.read()
        for opts, _ in sources:
            if opts.name not in rec.snapshots:
                raise UserError(f"source {opts.name}: {rec.errors.get(opts.name, 'could not be read')}")
        rec.update()
        desired = rec.all_desired()
    finally:
        for _, src in sources:
            src.close()
    docs = [d.check for d in desired.values()]
    names = [f"{ns}/{kind.lower()}-{name}.yaml" for kind, ns, name in desired]
    known = set(settings.protocols) | BUILTIN_PROTOCOLS
    problems = [f"{n}: {p}" for n, d in zip(names, docs) for p in validate(d, protocols=known)]
    if problems:
        raise UserError(f"{problems[0]} ({len(problems)} problem(s); nothing written)")
    return {n: yaml.safe_dump(d, sort_keys=False) for n, d in zip(names, docs)}


class Bridge:
    """Sources -> debounced queue -> reconciler, with a full resync, leader election and a health server."""

    def __init__(self, settings: Settings, kube: Kube, sources=None, *, metrics: Optional[Metrics] = None,
                 clock: Callable[[], float] = time.monotonic, identity: Optional[str] = None):
        self.settings, self.kube, self.clock = settings, kube, clock
        self.metrics = metrics or Metrics()
        self.sources = sources if sources is not None else open_sources(settings)
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leader: Optional[LeaderElector] = None
        if settings.lease_namespace:
            self.leader = LeaderElector(kube, settings.lease_namespace, settings.lease_name, self.identity,
                                        duration=settings.lease_duration, renew=settings.lease_duration / 3,
                                        on_change=self._leadership)
        self.rec = _reconciler(settings, self.sources, kube, self.metrics, clock=clock, allowed=self.is_leader)
        self._cond = threading.Condition()
        self._queue: dict[str, tuple[float, float]] = {}   # source -> (first, last) notification
        self._full = True
        self._next_resync = 0.0
        self._synced = False
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self.http: Optional[HealthServer] = None

    # ------------------------------------------------------------------ state

    def is_leader(self) -> bool:
        return self.leader is None or self.leader.is_leader()

    def ready(self) -> bool:
        return self._synced or not self.is_leader()

    def _leadership(self, leader: bool) -> None:
        self.metrics.set("codecgen_bridge_leader", int(leader))
        if leader:
            self.request_resync()

    def request_resync(self) -> None:
        with self._cond:
            self._full = True
            self._cond.notify()

    def _notifier(self, name: str):
        def notify(keys: set) -> None:
            now = self.clock()
            with self._cond:
                first, _ = self._queue.get(name, (now, now))
                self._queue[name] = (first, now)
                self._cond.notify()
        return notify

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Bridge":
        if self.settings.listen:
            self.http = HealthServer(*self.settings.listen, self.metrics, self.ready)
            event(logging.INFO, "serving /healthz /readyz /metrics", address=self.settings.listen[0],
                  port=self.http.port, identity=self.identity)
        self.metrics.set("codecgen_bridge_leader", int(self.is_leader()))
        for opts, src in self.sources:
            src.watch(self._notifier(opts.name))
        self._thread = threading.Thread(target=self._loop, name="bridge-reconcile", daemon=True)
        self._thread.start()
        if self.leader is not None:
            self.leader.start()
        return self

    def stop(self) -> None:
        if self.leader is not None:
            self.leader.release()
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        for _, src in self.sources:
            src.close()
        if self.http is not None:
            self.http.close()

    # ------------------------------------------------------------------ the loop

    def _due(self, now: float) -> float:
        s = self.settings
        times = [self._next_resync] + [min(last + s.debounce, first + s.max_delay)
                                       for first, last in self._queue.values()]
        if self.rec.next_due() is not None:
            times.append(self.rec.next_due())
        return min(times)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    now = self.clock()
                    if not self.is_leader():
                        self._cond.wait(0.5)
                    elif self._full or self._due(now) <= now:
                        break
                    else:
                        self._cond.wait(min(self._due(now) - now, 1.0))
                if self._stop:
                    return
                s = self.settings
                fire = [n for n, (first, last) in self._queue.items()
                        if min(last + s.debounce, first + s.max_delay) <= now]
                for name in fire:
                    del self._queue[name]
                full = self._full or self._next_resync <= now
                self._full = False
            try:
                self.step(now, fire, full)
            except ApiError as exc:
                self.metrics.inc("codecgen_bridge_errors_total", kind="api")
                event(logging.ERROR, "sync failed; retrying", error=exc.describe())
                with self._cond:
                    self._full, self._next_resync = False, now + min(s.resync, 5.0)
            except Exception as exc:  # noqa: BLE001 - the loop must survive a bug in one pass
                self.metrics.inc("codecgen_bridge_errors_total", kind="internal")
                event(logging.ERROR, "sync crashed; retrying", error=f"{type(exc).__name__}: {exc}")
                with self._cond:
                    self._next_resync = now + min(s.resync, 5.0)

    def step(self, now: float, fire: Sequence[str], full: bool) -> None:
        rec = self.rec
        if full:
            self._next_resync = now + self.settings.resync
            rec.read()
            rec.load_live()
            rec.update()
            rec.sync()
            self._synced = True
            event(logging.INFO, "full sync done", objects=len(rec.live), held=len(rec.held))
            return
        if fire:
            rec.sync(rec.update(rec.read(fire)))
        grace_over = [k for k, since in rec.held.items() if since + rec.grace <= now]
        if grace_over:
            rec.sync(grace_over)
