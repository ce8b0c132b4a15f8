"""``codecgen bridge`` against the Kubernetes API **fake** (tests/kube_fake.py, on 127.0.0.1):
server-side apply and ownership, idempotence, empty protection and the grace period, deletions,
API errors, templates, two sources on one host, debounce, leader election, metrics.

Registries here are small in-test :class:`Source` implementations (real objects implementing the
interface) and the ``file://`` source; the real ZooKeeper/etcd sources are tested by their half.
"""

from __future__ import annotations

import logging
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from codecgen.bridge.config import SourceOptions
from codecgen.bridge.kube import ApiError, Connection, Kube, load_connection
from codecgen.bridge.leader import LeaderElector
from codecgen.bridge.mapping import OWNER, OWNER_LABEL, Mapper
from codecgen.bridge.model import Instance, Service, Source, SourceError
from codecgen.bridge.observe import Metrics
from codecgen.bridge.reconcile import Reconciler
from codecgen.bridge.runner import Bridge, Settings

try:
    from tests.kube_fake import TOKEN, KubeFake
except ImportError:  # pragma: no cover - run from tests/
    from kube_fake import TOKEN, KubeFake  # type: ignore

NS = "mesh"
ENTRY = "aeraki-org-demo-greeter"


class MemorySource(Source):
    """A registry held in memory; ``fail`` makes list() raise SourceError."""

    scheme = "memory"

    def __init__(self, name: str = "mem"):
        super().__init__(f"memory://{name}", name)
        self.services: dict[str, Service] = {}
        self.fail = None
        self.notify = None

    def set(self, *services: Service) -> None:
        self.services = {s.key: s for s in services}
        if self.notify:
            self.notify({s.key for s in services})

    def list(self):
        if self.fail:
            raise SourceError(self.fail)
        return dict(self.services)

    def watch(self, notify) -> None:
        self.notify = notify

    def healthy(self) -> bool:
        return self.fail is None


def svc(source: str, *addresses: str, name: str = "org.demo.Greeter", port: int = 20880, **labels) -> Service:
    return Service(source=source, key=name, name=name, instances=tuple(
        Instance(address=a, port=port, protocol="dubbo", labels=labels) for a in addresses))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake():
    f = KubeFake().start()
    yield f
    f.stop()


def kube_for(fake: KubeFake, **kw) -> Kube:
    return Kube(Connection(server=fake.url, token=TOKEN), **{"timeout": 2.0, "backoff": 0.01, **kw})


def reconciler(fake, *sources, grace=30.0, clock=None, kube=None, **opts) -> Reconciler:
    pairs = [(SourceOptions(url=s.url, name=s.name, namespace=NS, **opts), s) for s in sources]
    mapper = Mapper({o.name: o for o, _ in pairs}, ["dubbo"])
    return Reconciler(pairs, mapper, kube or kube_for(fake), Metrics(), grace=grace, clock=clock or Clock())


def full(rec: Reconciler) -> None:
    rec.read()
    rec.load_live()
    rec.update()
    rec.sync()


def changed(rec: Reconciler) -> None:
    """What the runner does when a source notified and the debounce fired."""
    rec.sync(rec.update(rec.read()))


def endpoints(fake, name=ENTRY):
    obj = fake.get("ServiceEntry", NS, name)
    return sorted(e["address"] for e in obj["spec"].get("endpoints", [])) if obj else None


# --------------------------------------------------------------------------- apply, ownership, idempotence


def test_first_sync_creates_entry_then_unchanged_registry_and_restart_write_nothing(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1", "10.0.0.2", application="demo", methods="a,b"))
    rec = reconciler(fake, src)
    full(rec)
    obj = fake.get("ServiceEntry", NS, ENTRY)
    assert obj["spec"]["hosts"] == ["org.demo.greeter"]
    assert obj["spec"]["ports"] == [{"number": 20880, "name": "tcp-metaprotocol-dubbo-20880", "protocol": "TCP"}]
    assert obj["metadata"]["labels"] == {"manager": "aeraki", "registry": "mem", OWNER_LABEL: OWNER}
    assert obj["spec"]["endpoints"][0]["labels"] == {"application": "demo", "registry": "mem"}  # "a,b" dropped
    assert fake.total_writes() == 1
    full(rec)  # unchanged registry, second pass
    assert fake.total_writes() == 1
    full(reconciler(fake, src))  # a restarted bridge: fresh state, same registry
    assert fake.total_writes() == 1
    assert rec.metrics.get("codecgen_bridge_writes_total", kind="ServiceEntry", verb="apply") == 1


def test_addresses_allocated_by_another_manager_survive_the_bridges_apply(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    rec = reconciler(fake, src)
    full(rec)
    fake.update_as("aeraki", "ServiceEntry", NS, ENTRY,
                   lambda o: o["spec"].__setitem__("addresses", ["240.240.0.7"]))
    src.set(svc("mem", "10.0.0.1", "10.0.0.3"))
    changed(rec)
    obj = fake.get("ServiceEntry", NS, ENTRY)
    assert obj["spec"]["addresses"] == ["240.240.0.7"]
    assert endpoints(fake) == ["10.0.0.1", "10.0.0.3"]
    assert fake.owners[("ServiceEntry", NS, ENTRY)][("spec", "addresses")] == "aeraki"
    full(rec)  # the allocated VIP is not a difference: nothing to write
    assert fake.total_writes("ServiceEntry") == 3  # create, aeraki's update, one change


def test_a_field_someone_else_changed_is_repaired_at_the_next_resync(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    rec = reconciler(fake, src)
    full(rec)
    fake.update_as("kubectl-edit", "ServiceEntry", NS, ENTRY,
                   lambda o: o["spec"]["endpoints"].append({"address": "10.6.6.6"}))
    full(rec)
    assert endpoints(fake) == ["10.0.0.1"]
    assert fake.owners[("ServiceEntry", NS, ENTRY)][("spec", "endpoints")] == "codecgen-bridge"
    assert fake.total_writes("ServiceEntry") == 3  # create, the edit, the repair
    full(rec)
    assert fake.total_writes("ServiceEntry") == 3


def test_fake_reports_apply_conflicts_without_force_and_invalid_objects_with_the_field(fake):
    kube = kube_for(fake, retries=0)
    fake.create_as("kubectl", {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
                               "metadata": {"name": "x", "namespace": NS},
                               "spec": {"hosts": ["x.example"], "location": "MESH_EXTERNAL"}})
    body = {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
            "metadata": {"name": "x", "namespace": NS}, "spec": {"hosts": ["x.example"], "location": "MESH_INTERNAL"}}
    with pytest.raises(ApiError) as info:
        kube.request("PATCH", kube.path("ServiceEntry", NS, "x", fieldManager="other"), "x", body=body,
                     content_type="application/apply-patch+yaml")
    assert info.value.status == 409 and ".spec.location" in info.value.describe()
    body["spec"]["ports"] = [{"number": 1, "name": "tcp-metaprotocol"}]
    with pytest.raises(ApiError) as info:
        kube.apply(body)
    assert info.value.status == 422
    assert "ServiceEntry mesh/x: spec.ports[0].name" in info.value.describe()


# --------------------------------------------------------------------------- registry trouble


def test_a_failing_source_changes_nothing(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    rec = reconciler(fake, src, grace=0.0)
    full(rec)
    src.fail = "connection refused"
    src.services = {}
    full(rec)
    changed(rec)
    assert endpoints(fake) == ["10.0.0.1"] and fake.total_writes() == 1
    assert rec.metrics.get("codecgen_bridge_errors_total", kind="source") == 2


def test_a_source_never_read_leaves_what_it_fed_alone(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    full(reconciler(fake, src))
    src.fail = "session expired"
    rec = reconciler(fake, src, grace=0.0)  # restart while the registry is down
    full(rec)
    rec.clock.now += 3600
    full(rec)
    assert endpoints(fake) == ["10.0.0.1"] and fake.total_writes() == 1


def test_empty_protection_holds_a_drop_to_zero_for_the_grace_period(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1", "10.0.0.2"))
    rec = reconciler(fake, src, grace=30.0)
    full(rec)
    src.set(svc("mem"))                       # n -> 0
    changed(rec)
    rec.clock.now += 20
    full(rec)
    assert endpoints(fake) == ["10.0.0.1", "10.0.0.2"] and rec.next_due() == 1030.0
    src.set(svc("mem", "10.0.0.1", "10.0.0.2"))  # back within the grace period: nothing happened
    changed(rec)
    assert not rec.held and fake.total_writes() == 1
    src.set(svc("mem"))
    changed(rec)
    rec.clock.now += 31
    rec.sync(list(rec.held))
    obj = fake.get("ServiceEntry", NS, ENTRY)
    assert obj["spec"]["endpoints"] == [] and obj["spec"]["ports"][0]["number"] == 20880  # ports kept
    assert fake.total_writes() == 2


def test_disappeared_service_is_deleted_after_the_grace_period_and_counted(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"), svc("mem", "10.0.0.9", name="org.demo.Other"))
    rec = reconciler(fake, src, grace=30.0)
    full(rec)
    users = {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",  # not ours: never touched
             "metadata": {"name": "users-own", "namespace": NS, "labels": {"manager": "aeraki"}},
             "spec": {"hosts": ["own.example"], "resolution": "NONE"}}
    fake.create_as("kubectl", users)
    src.set(svc("mem", "10.0.0.9", name="org.demo.Other"))
    changed(rec)
    rec.clock.now += 29
    full(rec)
    assert fake.get("ServiceEntry", NS, ENTRY) is not None
    rec.clock.now += 2
    full(rec)
    assert fake.get("ServiceEntry", NS, ENTRY) is None
    assert fake.get("ServiceEntry", NS, "users-own") is not None
    assert rec.metrics.get("codecgen_bridge_deletions_total") == 1
    assert fake.writes[("delete", "ServiceEntry")] == 1


# --------------------------------------------------------------------------- API errors


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_api_errors_are_retried(fake, status):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    fake.inject(status, method="PATCH", times=2)
    rec = reconciler(fake, src)
    full(rec)
    assert endpoints(fake) == ["10.0.0.1"]
    assert fake.requests[("PATCH", "ServiceEntry")] == 3


def test_a_timeout_is_retried_and_the_write_lands_once(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    fake.inject(None, method="PATCH", delay=0.6)  # served, but after the client gave up
    rec = reconciler(fake, src, kube=kube_for(fake, timeout=0.3))
    full(rec)
    time.sleep(0.4)
    assert endpoints(fake) == ["10.0.0.1"] and fake.writes[("apply", "ServiceEntry")] == 1


@pytest.fixture
def bridge_log():
    """The bridge's log records (its logger does not propagate once the CLI has set it up)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("codecgen.bridge")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_a_bad_object_is_reported_by_name_and_field_and_does_not_stop_the_others(fake, bridge_log):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"), svc("mem", "h" * 300, name="org.demo.Bad"),
            svc("mem", "10.0.0.3", name="org.demo.Zed"))
    fake.inject(422, method="PATCH", times=1)  # the API refuses one of the two good objects
    rec = reconciler(fake, src)
    full(rec)
    text = " ".join(str(getattr(r, "fields", "")) for r in bridge_log if r.levelno >= logging.ERROR)
    assert "ServiceEntry aeraki-org-demo-bad: spec.endpoints[0].address" in text  # refused before sending
    applied = [n for n in (ENTRY, "aeraki-org-demo-zed") if fake.get("ServiceEntry", NS, n)]
    refused = ({ENTRY, "aeraki-org-demo-zed"} - set(applied)).pop()
    assert len(applied) == 1 and f"ServiceEntry/mesh/{refused}" in text and "HTTP 422" in text
    assert rec.metrics.get("codecgen_bridge_errors_total", kind="invalid") == 2
    full(rec)  # the refused apply is retried on the next pass; the bad one is still not sent
    assert endpoints(fake) == ["10.0.0.1"] and endpoints(fake, "aeraki-org-demo-zed") == ["10.0.0.3"]
    assert fake.get("ServiceEntry", NS, "aeraki-org-demo-bad") is None


# --------------------------------------------------------------------------- templates, two sources


def template(name, host, resolution, external="true", service="greeter"):
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": NS,
                         "labels": {"manager": "aeraki", "registry": "polaris", "team": "a"},
                         "annotations": {"aeraki.net/polarisNamespace": "Production",
                                         "aeraki.net/polarisService": service, "aeraki.net/external": external}},
            "spec": {"hosts": [host], "resolution": resolution}}


def test_polaris_template_is_filled_in_place(fake):
    fake.create_as("kubectl", template("my-greeter", "dev.greeter.polaris", "STATIC"))
    fake.create_as("kubectl", template("greeter-none", "dev.hello.polaris", "NONE", external="false",
                                       service="hello"))
    src = MemorySource("polaris")
    src.set(Service(source="polaris", key="Production/greeter", name="greeter", namespace="Production",
                    instances=(Instance("10.1.0.1", 8080, "dubbo", weight=80),
                               Instance("10.1.0.2", 8080, "dubbo", weight=20))),
            Service(source="polaris", key="Production/hello", name="hello", namespace="Production",
                    instances=(Instance("10.1.0.3", 8080, "dubbo"),)))
    rec = reconciler(fake, src)
    full(rec)
    obj = fake.get("ServiceEntry", NS, "my-greeter")
    assert obj["spec"]["hosts"] == ["dev.greeter.polaris"] and obj["spec"]["resolution"] == "STATIC"
    assert obj["metadata"]["labels"] == {"manager": "aeraki", "registry": "polaris", "team": "a"}
    assert obj["spec"]["location"] == "MESH_EXTERNAL"
    assert [(e["address"], e.get("weight")) for e in obj["spec"]["endpoints"]] == [("10.1.0.1", 80), ("10.1.0.2", 20)]
    none = fake.get("ServiceEntry", NS, "greeter-none")
    assert none["spec"]["resolution"] == "NONE" and "endpoints" not in none["spec"]  # Istio forbids them
    assert none["spec"]["ports"][0]["name"] == "tcp-metaprotocol-dubbo-8080"
    assert none["spec"]["location"] == "MESH_INTERNAL"
    assert [o["metadata"]["name"] for o in fake.list("ServiceEntry")] == ["greeter-none", "my-greeter"]
    writes = fake.total_writes()
    full(rec)
    assert fake.total_writes() == writes


def test_two_sources_feed_one_host(fake):
    zk, etcd = MemorySource("zk"), MemorySource("etcd")
    zk.set(svc("zk", "10.0.0.1"))
    etcd.set(svc("etcd", "10.0.0.2"))
    rec = reconciler(fake, zk, etcd)
    full(rec)
    obj = fake.get("ServiceEntry", NS, ENTRY)
    assert [(e["address"], e["labels"]["registry"]) for e in obj["spec"]["endpoints"]] == [
        ("10.0.0.1", "zk"), ("10.0.0.2", "etcd")]
    assert obj["metadata"]["labels"]["registry"] == "etcd.zk"
    etcd.fail = "etcd down"
    zk.set(svc("zk", "10.0.0.1", "10.0.0.5"))
    changed(rec)
    assert endpoints(fake) == ["10.0.0.1", "10.0.0.2", "10.0.0.5"]  # etcd's last good endpoints kept


# --------------------------------------------------------------------------- the runner


def settings(sources, **kw) -> Settings:
    return Settings(sources=[SourceOptions(url=s.url, name=s.name, namespace=NS) for s in sources],
                    protocols=["dubbo"], **{"listen": ("127.0.0.1", 0), "resync": 600.0, **kw})


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def bridge(fake, srcs, **kw) -> Bridge:
    return Bridge(settings(srcs, **kw), kube_for(fake), [(o, s) for o, s in zip(settings(srcs).sources, srcs)])


def test_hundred_flaps_in_a_second_make_one_write_after_the_debounce(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1"))
    b = bridge(fake, [src], debounce=1.0, max_delay=20.0).start()
    try:
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1"])
        start = fake.total_writes()
        for i in range(100):
            src.set(svc("mem", "10.0.0.1", *(["10.0.0.2"] if i % 2 else [])))
            time.sleep(0.01)
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1", "10.0.0.2"], timeout=10)
        time.sleep(1.5)
        assert fake.total_writes() - start == 1
    finally:
        b.stop()


def test_health_ready_and_metrics_endpoints(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1", "10.0.0.2"), svc("mem", "10.0.0.3", name="x.Y", port=1))
    src.services["grpc"] = Service(source="mem", key="grpc", name="grpc",
                                   instances=(Instance("10.9.9.9", 1, "grpc"),))
    b = bridge(fake, [src]).start()
    try:
        base = f"http://127.0.0.1:{b.http.port}"
        assert urllib.request.urlopen(base + "/healthz").status == 200
        assert wait_for(lambda: b.ready())
        assert urllib.request.urlopen(base + "/readyz").status == 200
        text = urllib.request.urlopen(base + "/metrics").read().decode()
    finally:
        b.stop()
    for line in ('codecgen_bridge_services{source="mem"} 3', 'codecgen_bridge_endpoints{source="mem"} 4',
                 'codecgen_bridge_writes_total{kind="ServiceEntry",verb="apply"} 2',
                 'codecgen_bridge_refused_services{reason="unknown-protocol",source="mem"} 1',
                 "# TYPE codecgen_bridge_last_sync_timestamp_seconds gauge",
                 'codecgen_bridge_source_up{source="mem"} 1', "codecgen_bridge_leader 1"):
        assert line in text, line
    assert 'codecgen_bridge_last_sync_timestamp_seconds{source="mem"} 1' in text


def test_two_replicas_only_the_leader_writes_and_the_other_takes_over(fake):
    src_a, src_b = MemorySource(), MemorySource()
    for s in (src_a, src_b):
        s.set(svc("mem", "10.0.0.1"))
    kw = dict(lease_namespace=NS, lease_duration=3.0, debounce=0.05)
    a = Bridge(settings([src_a], **kw), kube_for(fake), [(settings([src_a]).sources[0], src_a)], identity="a").start()
    assert wait_for(lambda: a.is_leader() and endpoints(fake) == ["10.0.0.1"])
    b = Bridge(settings([src_b], **kw), kube_for(fake), [(settings([src_b]).sources[0], src_b)], identity="b").start()
    try:
        time.sleep(1.0)
        assert not b.is_leader()
        src_b.set(svc("mem", "10.0.0.1", "10.0.0.2"))  # only b sees this change: b must not write it
        time.sleep(0.5)
        assert endpoints(fake) == ["10.0.0.1"]
        a.leader._stop.set()  # a crashes: it stops renewing, without handing the lease back
        a.leader._thread.join()
        assert wait_for(lambda: b.is_leader(), timeout=15)
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1", "10.0.0.2"], timeout=10)
        assert not a.is_leader()
        assert fake.get("Lease", NS, "codecgen-bridge")["spec"]["holderIdentity"] == "b"
    finally:
        a.stop()
        b.stop()
    assert fake.get("Lease", NS, "codecgen-bridge")["spec"]["holderIdentity"] == ""  # b released it


def test_lease_races_stale_resource_versions_and_expiry_by_the_observers_clock(fake):
    clock = Clock()
    a, b = (LeaderElector(kube_for(fake), NS, "lease", ident, duration=10, clock=clock) for ident in "ab")
    assert a.try_once() and not b.try_once()
    stale = fake.get("Lease", NS, "lease")
    assert a.try_once()  # renewal: a new resourceVersion
    stale["spec"]["holderIdentity"] = "b"
    with pytest.raises(ApiError) as info:  # a replace from a stale read is refused, not retried
        kube_for(fake).replace(stale)
    assert info.value.status == 409 and fake.requests[("PUT", "Lease")] == 2
    clock.now += 9
    assert not b.try_once()  # b saw the record change 9 s ago (its own clock): not expired
    clock.now += 2
    assert not b.try_once()  # b first saw this record at +9: unchanged for 2 s only
    clock.now += 9
    assert b.try_once() and fake.get("Lease", NS, "lease")["spec"]["holderIdentity"] == "b"
    assert not a.is_leader()  # a stopped calling itself leader 2/3 of the duration after its last renewal
    fake.inject(409, method="PUT", kind="Lease")  # b loses one renewal race: it retries at its next round
    assert b.try_once()  # the 409 is not an error: still leader within its renew deadline
    assert b.try_once() and fake.get("Lease", NS, "lease")["spec"]["holderIdentity"] == "b"


def test_file_source_change_reaches_the_cluster(fake, tmp_path):
    reg = tmp_path / "reg.yaml"
    reg.write_text("- name: org.demo.Greeter\n  instances:\n  - {address: 10.0.0.1, port: 20880, protocol: dubbo}\n")
    from codecgen.bridge.sources.file import FileSource

    src = FileSource(f"file://{reg}?interval=0.05")
    opts = SourceOptions(url=src.url, name="file", namespace=NS)
    b = Bridge(Settings(sources=[opts], protocols=["dubbo"], listen=None, debounce=0.05), kube_for(fake),
               [(opts, src)]).start()
    try:
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1"])
        reg.write_text(reg.read_text() + "  - {address: 10.0.0.2, port: 20880, protocol: dubbo}\n")
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1", "10.0.0.2"])
        reg.write_text("- [not, a, service")  # broken file: the last good content stays
        time.sleep(0.5)
        assert endpoints(fake) == ["10.0.0.1", "10.0.0.2"]
    finally:
        b.stop()


def test_kubeconfig_token_and_refusals(fake, tmp_path, monkeypatch):
    path = fake.kubeconfig(tmp_path / "config")
    kube = Kube(load_connection(str(path)), backoff=0.01)
    assert kube.list("ServiceEntry", NS) == []
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert Kube(load_connection()).conn.token == TOKEN
    bad = Kube(Connection(server=fake.url, token="wrong"), retries=0)
    with pytest.raises(ApiError) as info:
        bad.list("ServiceEntry", NS)
    assert info.value.status == 401
    text = path.read_text().replace("token: fake-token", "exec: {command: aws}")
    (tmp_path / "exec").write_text(text)
    from codecgen.errors import UserError

    with pytest.raises(UserError, match="exec/auth-provider"):
        load_connection(str(tmp_path / "exec"))


def test_bridge_run_process_syncs_serves_metrics_stops_on_sigterm_and_a_restart_writes_nothing(fake, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    reg = tmp_path / "reg.yaml"
    reg.write_text("- name: org.demo.Greeter\n  instances:\n  - {address: 10.0.0.1, port: 20880, protocol: dubbo}\n")
    cfg = fake.kubeconfig(tmp_path / "kubeconfig")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run_bridge(check):
        proc = subprocess.Popen(
            [sys.executable, "-m", "codecgen.cli", "bridge", "run", "--source", f"file://{reg}?interval=0.05",
             "--protocol", "dubbo", "--namespace", NS, "--kubeconfig", str(cfg), "--listen", "127.0.0.1:0",
             "--debounce", "0.05"], stderr=subprocess.PIPE, text=True, env=env)
        try:
            first = json.loads(proc.stderr.readline())
            assert first["msg"] == "serving /healthz /readyz /metrics"
            check(f"http://127.0.0.1:{first['port']}", first["identity"])
        finally:
            proc.send_signal(signal.SIGTERM)
            rest = proc.communicate(timeout=20)[1]
        assert proc.returncode == 0, rest
        assert fake.get("Lease", NS, "codecgen-bridge")["spec"]["holderIdentity"] == ""  # handed back
        return [json.loads(line) for line in rest.splitlines()]

    def first_run(base, identity):
        assert wait_for(lambda: endpoints(fake) == ["10.0.0.1"])
        line = 'codecgen_bridge_writes_total{kind="ServiceEntry",verb="apply"} 1'
        assert wait_for(lambda: line in urllib.request.urlopen(base + "/metrics").read().decode())
        assert fake.get("Lease", NS, "codecgen-bridge")["spec"]["holderIdentity"] == identity

    def ready(base):
        try:
            return urllib.request.urlopen(base + "/readyz").status == 200
        except urllib.error.HTTPError as exc:  # 503 until the leader's first full sync
            return exc.code == 200

    def second_run(base, identity):
        assert wait_for(lambda: fake.get("Lease", NS, "codecgen-bridge")["spec"]["holderIdentity"] == identity
                        and ready(base))

    lines = run_bridge(first_run)
    assert {"became leader", "apply", "full sync done"} <= {line["msg"] for line in lines}
    writes = fake.total_writes("ServiceEntry")
    lines = run_bridge(second_run)
    assert "full sync done" in {line["msg"] for line in lines}
    assert fake.total_writes("ServiceEntry") == writes == 1  # the restart wrote nothing


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command to make test certificates")
def test_kubeconfig_with_ca_and_client_certificate_data_over_tls(tmp_path):
    import base64
    import ssl
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=fake-ca")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        (tmp_path / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    tls.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    tls.verify_mode = ssl.CERT_REQUIRED  # the fake accepts only our client certificate
    fake = KubeFake(token=None).start(tls=tls)
    try:
        data = {n: base64.b64encode((tmp_path / n).read_bytes()).decode()
                for n in ("ca.crt", "client.crt", "client.key")}
        cfg = tmp_path / "config"
        cfg.write_text(yaml.safe_dump({
            "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": fake.url, "certificate-authority-data": data["ca.crt"]}}],
            "users": [{"name": "u", "user": {"client-certificate-data": data["client.crt"],
                                             "client-key-data": data["client.key"]}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
        conn = load_connection(str(cfg))
        kube = Kube(conn, retries=0)
        assert not any(Path(p).exists() for p in conn.temporary)  # key material not left on disk
        assert kube.list("ServiceEntry", NS) == []
        no_cert = Kube(Connection(server=fake.url, ca_file=str(tmp_path / "ca.crt")), retries=0)
        with pytest.raises(ApiError):
            no_cert.list("ServiceEntry", NS)
    finally:
        fake.stop()


def test_two_hosts_one_entry_name_the_second_is_refused(fake):
    src = MemorySource()
    src.set(svc("mem", "10.0.0.1", name="a.b"), svc("mem", "10.0.0.2", name="a-b"))
    rec = reconciler(fake, src)
    full(rec)
    assert fake.get("ServiceEntry", NS, "aeraki-a-b")["spec"]["hosts"] == ["a-b"]  # first in key order
    assert rec.refused == {("mem", "a.b"): "invalid"}
    assert rec.metrics.get("codecgen_bridge_refused_services", source="mem", reason="invalid") == 1


def test_lists_are_read_in_pages(fake):
    for i in range(7):
        fake.create_as("kubectl", {"apiVersion": "networking.istio.io/v1beta1", "kind": "ServiceEntry",
                                   "metadata": {"name": f"se{i}", "namespace": NS, "labels": {"n": str(i % 2)}},
                                   "spec": {"hosts": [f"h{i}.example"], "resolution": "NONE"}})
    kube = kube_for(fake)
    assert [o["metadata"]["name"] for o in kube.list("ServiceEntry", NS, "n=1", page=2)] == ["se1", "se3", "se5"]
    assert len(kube.list("ServiceEntry", NS, page=3)) == 7
    assert fake.requests[("GET", "ServiceEntry")] == 2 + 3
