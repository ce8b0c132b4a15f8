"""Desired state from the last good snapshot of every source, compared with what is live.

- A source whose ``list()`` raised :class:`SourceError` keeps its last good snapshot: nothing
  it fed changes.  Objects fed by a source that has never been read are not touched at all.
- An entry whose endpoints would drop from n to 0, and an entry (or alias) whose services
  disappeared, are *held*: applied (emptied / deleted) only when the condition still holds after
  ``grace`` seconds.  Deletions are counted.  An emptied entry keeps its ports; a service never
  seen with an instance has no port to declare and gets no entry.
- An object is written only when what the bridge applies differs from what is live (its hash
  annotation or any field it owns), so an unchanged registry, and a restart, write nothing.
- Only objects carrying the ownership label are deleted; templates are filled, never deleted.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence

from codecgen.backends.k8s.validate import BUILTIN_PROTOCOLS, validate
from codecgen.bridge import mapping
from codecgen.bridge.config import SourceOptions
from codecgen.bridge.kube import ApiError, Kube
from codecgen.bridge.mapping import OWNER, OWNER_LABEL, SOURCES, Mapper, Refused
from codecgen.bridge.model import Service, Snapshot, Source, SourceError
from codecgen.bridge.observe import Metrics, event

Key = tuple[str, str, str]          # (kind, namespace, name)
SvcId = tuple[str, str]             # (source name, service key)


@dataclass
class Desired:
    body: dict                      # what is applied
    check: dict                     # the object as it will look (validated)
    template: bool = False


@dataclass
class _Entry:                       # a generated entry or a template, and the services that feed it
    host: str
    members: set = field(default_factory=set)
    template: bool = False


def _sources_of(obj: Optional[Mapping]) -> set[str]:
    notes = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return {s for s in (notes.get(SOURCES) or "").split(",") if s}


def _digest(value) -> int:
    return hash(json.dumps(value, sort_keys=True, separators=(",", ":")))


def _slim(obj: Mapping, full_spec: bool = False) -> dict:
    """What the live cache keeps of an API object: its name, labels and annotations, a digest of
    each spec field (what :func:`differs` compares), the ports and the endpoint count; the whole
    spec only for a user's template (it is filled from it).  managedFields, status and the
    endpoints themselves are dropped: at 10,000 entries of 10 endpoints the difference is most of
    the bridge's memory."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return {"kind": obj.get("kind"),
            "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta},
            "spec": dict(spec) if full_spec else {k: spec[k] for k in ("ports",) if k in spec},
            "digest": {k: _digest(v) for k, v in spec.items()},
            "endpoints": len(spec.get("endpoints") or [])}


def differs(body: Mapping, live: Optional[Mapping]) -> bool:
    """Whether applying ``body`` would change ``live`` (a :func:`_slim` object): any label,
    annotation or spec field the bridge applies."""
    if live is None:
        return True
    for part in ("labels", "annotations"):
        have = live["metadata"].get(part) or {}
        if any(have.get(k) != v for k, v in (body["metadata"].get(part) or {}).items()):
            return True
    return any(live["digest"].get(k) != _digest(v) for k, v in body["spec"].items())


class Reconciler:
    def __init__(self, sources: Sequence[tuple[SourceOptions, Source]], mapper: Mapper,
                 kube: Optional[Kube], metrics: Metrics, *, grace: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, allowed: Callable[[], bool] = lambda: True,
                 workers: int = 4):
        self.sources = {opts.name: (opts, src) for opts, src in sources}
        self.mapper, self.kube, self.metrics = mapper, kube, metrics
        self.grace, self.clock, self.allowed = grace, clock, allowed
        self.workers = workers  # concurrent API writes (each thread has its own keep-alive connection)
        self.namespaces = sorted({opts.namespace for opts, _ in sources})
        self.snapshots: dict[str, Snapshot] = {}
        self.errors: dict[str, str] = {}           # source -> its last read error
        self.live: dict[Key, dict] = {}
        self.held: dict[Key, float] = {}
        self.entries: dict[Key, _Entry] = {}
        self.claims: dict[SvcId, Key] = {}
        self.refused: dict[SvcId, str] = {}
        self.templates: dict[tuple[str, str, str], Key] = {}   # (source, namespace, service) -> key
        self.by_alias: dict[tuple[str, str], Key] = {}           # (namespace, alias name) -> entry key
        self._stale = True

    # ------------------------------------------------------------------ reading

    def read(self, names: Optional[Iterable[str]] = None) -> set[SvcId]:
        """List the sources; the services whose value changed since their last good snapshot."""
        changed: set[SvcId] = set()
        for name in list(names) if names is not None else list(self.sources):
            _, src = self.sources[name]
            try:
                snap = dict(src.list())
            except SourceError as exc:
                self.metrics.set("codecgen_bridge_source_up", 0, source=name)
                self.errors[name] = str(exc)
                self.metrics.inc("codecgen_bridge_errors_total", kind="source")
                event(logging.WARNING, "source read failed; keeping its last good snapshot",
                      source=name, error=str(exc))
                continue
            self.errors.pop(name, None)
            self.metrics.set("codecgen_bridge_source_up", 1, source=name)
            old = self.snapshots.get(name, {})
            changed.update((name, k) for k in old.keys() | snap.keys()
                           if old.get(k) is not snap.get(k) and old.get(k) != snap.get(k))
            self.snapshots[name] = snap
            self.metrics.set("codecgen_bridge_services", len(snap), source=name)
            self.metrics.set("codecgen_bridge_endpoints", sum(
                sum(1 for i in s.instances if i.healthy) for s in snap.values()), source=name)
            self.metrics.set("codecgen_bridge_last_sync_timestamp_seconds", time.time(), source=name)
        return changed

    def load_live(self) -> None:
        """Read the owned objects and the users' templates from the API server."""
        live: dict[Key, dict] = {}
        templates: dict[tuple[str, str, str], Key] = {}
        kinds = ["ServiceEntry"] + (["Service"] if any(o.alias for o, _ in self.sources.values()) else [])
        for ns in self.namespaces:
            for kind in kinds:
                for obj in self.kube.list(kind, ns, f"{OWNER_LABEL}={OWNER}"):
                    live[(kind, ns, obj["metadata"]["name"])] = _slim(obj)
            for obj in self.kube.list("ServiceEntry", ns, f"manager=aeraki,{OWNER_LABEL}!={OWNER}"):
                target = Mapper.template_target(obj)
                if target and target[0] in self.sources:
                    key = ("ServiceEntry", ns, obj["metadata"]["name"])
                    live[key] = _slim(obj, full_spec=True)
                    templates[target] = key
        self.live = live
        self.templates = templates
        self._stale = True  # claims depend on the templates: place everything again

    # ------------------------------------------------------------------ desired state

    def _claim(self, sid: SvcId, svc: Optional[Service]) -> set[Key]:
        """Move ``sid`` to where ``svc`` goes now; the keys whose members changed."""
        touched = set()
        old = self.claims.pop(sid, None)
        if old is not None:
            self.entries[old].members.discard(sid)
            touched.add(old)
        self.refused.pop(sid, None)
        if svc is None:
            return touched
        key = self.templates.get((sid[0], svc.namespace or "", svc.name))
        if key is None:
            try:
                place = self.mapper.place(svc)
            except Refused as exc:
                return touched | self._refuse(sid, exc.reason, str(exc))
            key = ("ServiceEntry", place.namespace, place.name)
            entry = self.entries.setdefault(key, _Entry(host=place.host))
            if entry.template or (entry.host != place.host and entry.members):
                used = "a user's template" if entry.template else f"host {entry.host}"
                return touched | self._refuse(sid, "invalid", f"entry name {place.name} is already used "
                                                              f"by {used} (this host: {place.host})")
            entry.host = place.host
            self.by_alias[(key[1], place.host.replace(".", "-"))] = key
        self.entries[key].members.add(sid)
        self.claims[sid] = key
        return touched | {key}

    def _refuse(self, sid: SvcId, reason: str, message: str) -> set:
        self.refused[sid] = reason
        event(logging.WARNING, "service refused", source=sid[0], service=sid[1], reason=reason, error=message)
        return set()

    def update(self, changed: Optional[Iterable[SvcId]] = None) -> set[Key]:
        """Re-place the ``changed`` services (all, when None); the entry keys whose members changed."""
        touched = set()
        if changed is None or self._stale:
            self.entries = {k: _Entry(host="", template=True) for k in self.templates.values()}
            self.claims.clear()
            self.refused.clear()
            self.by_alias.clear()
            self._stale = False
            changed = [(n, k) for n, snap in self.snapshots.items() for k in snap]
            touched = set(self.entries)
        for sid in sorted(changed):
            touched |= self._claim(sid, self.snapshots.get(sid[0], {}).get(sid[1]))
        for name in self.sources:
            for reason in ("unknown-protocol", "invalid"):
                self.metrics.set("codecgen_bridge_refused_services", sum(
                    1 for (s, _), r in self.refused.items() if s == name and r == reason),
                    source=name, reason=reason)
        return touched

    def _aliased(self, key: Key) -> bool:
        entry = self.entries.get(key)
        return bool(entry and not entry.template and any(self.sources[s][0].alias for s, _ in entry.members))

    def desired(self, key: Key) -> Optional[Desired]:
        """What ``key`` should be (None: nothing); :class:`Refused` for an alias with a bad name."""
        if key[0] == "Service":
            ekey = self.by_alias.get((key[1], key[2]))
            if ekey is None or not self._aliased(ekey):
                return None
            body = self.mapper.alias(self.desired(ekey).body)
            return Desired(body, body)
        entry = self.entries.get(key)
        if entry is None or (not entry.members and not entry.template):
            return None
        members = [(self.sources[s][0], self.snapshots[s][k]) for s, k in sorted(entry.members)]
        if entry.template:
            body, check = self.mapper.fill(self.live[key], members)
            return Desired(body, check, template=True)
        body = self.mapper.entry(mapping.Placement(key[1], entry.host, key[2]), members)
        return Desired(body, body)

    def all_desired(self) -> dict[Key, Desired]:
        """Every object the sources ask for, aliases included (refused aliases are logged)."""
        out = {}
        for key in sorted(self.entries):
            keys = [key] + ([("Service", key[1], self.entries[key].host.replace(".", "-"))]
                            if self._aliased(key) else [])
            for k in keys:
                d = self._safe_desired(k)
                if d is not None and (k[0] != "ServiceEntry" or d.template or d.body["spec"].get("ports")):
                    out[k] = d
        return out

    # ------------------------------------------------------------------ writing

    def sync(self, keys: Optional[Iterable[Key]] = None) -> None:
        """Bring ``keys`` (entry keys from :meth:`update`; all known objects when None) to their
        desired state, with the alias Service of each entry."""
        wanted = self.all_desired() if keys is None else None
        if keys is None:
            keys = set(wanted) | set(self.live) | set(self.held)
        else:
            keys = set(keys)
            keys |= {("Service", k[1], self.entries[k].host.replace(".", "-"))
                     for k in list(keys) if k in self.entries and self.entries[k].host}
        writes = []
        for key in sorted(keys):
            write = self._sync_one(key, wanted.get(key) if wanted is not None else self._safe_desired(key))
            if write is not None:
                writes.append(write)
        self.metrics.set("codecgen_bridge_held", len(self.held))
        if len(writes) > 1 and self.workers > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="bridge-write") as pool:
                list(pool.map(lambda w: self._write(*w), writes))
        else:
            for w in writes:
                self._write(*w)

    def _safe_desired(self, key: Key) -> Optional[Desired]:
        try:
            return self.desired(key)
        except Refused as exc:
            event(logging.WARNING, "alias refused", error=str(exc))
            return None

    def next_due(self) -> Optional[float]:
        """When the earliest held object's grace period ends (clock time), or None."""
        return min(self.held.values()) + self.grace if self.held else None

    def _hold(self, key: Key, what: str) -> bool:
        """True when ``key`` has been in this state for the grace period (then it is released)."""
        since = self.held.setdefault(key, self.clock())
        if self.clock() - since < self.grace:
            event(logging.INFO, f"holding {what} for the grace period", object="/".join(key),
                  remaining=round(since + self.grace - self.clock(), 3))
            return False
        del self.held[key]
        return True

    def _sync_one(self, key: Key, d: Optional[Desired]) -> Optional[tuple]:
        """The write ``key`` needs now (key, verb, body), or None."""
        live = self.live.get(key)
        fed_by = _sources_of(live) | (_sources_of(d.body) if d else set())
        if any(s in self.sources and s not in self.snapshots for s in fed_by):
            return  # a source that feeds it has not been read yet: do not guess
        if d is None:
            if live is None or (live["metadata"].get("labels") or {}).get(OWNER_LABEL) != OWNER:
                self.held.pop(key, None)
                return
            return (key, "delete", None) if self._hold(key, "deletion") else None
        body = d.body
        if key[0] == "ServiceEntry" and live is not None:
            if not body["spec"].get("ports") and live["spec"].get("ports"):
                body = mapping.stamp({**body, "spec": {**body["spec"], "ports": live["spec"]["ports"]}})
                d = Desired(body, {**d.check, "spec": {**d.check["spec"], "ports": live["spec"]["ports"]}},
                            d.template)
            if "endpoints" in body["spec"] and not body["spec"]["endpoints"] and live["endpoints"]:
                if not self._hold(key, "emptying"):
                    return
            else:
                self.held.pop(key, None)
        if key[0] == "ServiceEntry" and not d.template and not body["spec"].get("ports"):
            return  # a service never seen with an instance: no port to declare, nothing to create
        if not differs(body, live):
            return
        problems = validate(d.check, protocols=self.mapper.protocols | BUILTIN_PROTOCOLS)
        if problems:
            self.metrics.inc("codecgen_bridge_errors_total", kind="invalid")
            event(logging.ERROR, "object refused by validation; not written", object="/".join(key),
                  error=problems[0], problems=len(problems))
            return
        return key, "apply", body

    def _write(self, key: Key, verb: str, body: Optional[dict]) -> None:
        if self.kube is None or not self.allowed():
            return
        try:
            if verb == "apply":
                entry = self.entries.get(key)
                self.live[key] = _slim(self.kube.apply(body), full_spec=bool(entry and entry.template))
            else:
                self.kube.delete(*key)
                self.live.pop(key, None)
                if key[0] == "ServiceEntry":
                    self.metrics.inc("codecgen_bridge_deletions_total")
        except ApiError as exc:
            kind = "invalid" if exc.status in (400, 422) else "api"
            self.metrics.inc("codecgen_bridge_errors_total", kind=kind)
            event(logging.ERROR, f"{verb} failed", object="/".join(key), error=exc.describe())
            return
        self.metrics.inc("codecgen_bridge_writes_total", kind=key[0], verb=verb)
        event(logging.INFO, f"{verb}", object="/".join(key))
