"""End to end: real ZooKeeper / etcd (tests/registries.py) -> the bridge (its real sources and
runner) -> the Kubernetes API fake (tests/kube_fake.py), observed at the API: what was written,
that nothing was lost, and that an unchanged registry writes nothing. Each registry fault of
tests/test_bridge_sources.py, seen from the cluster's side."""

from __future__ import annotations

import json
import time

import pytest

import registries
from registries import dubbo_url, etcd, wait_until, zookeeper  # noqa: F401 - fixtures
from codecgen.bridge.config import SourceOptions
from codecgen.bridge.kube import Connection, Kube
from codecgen.bridge.runner import Bridge, Settings
from codecgen.bridge.sources import open_source

try:
    from tests.kube_fake import TOKEN, KubeFake
except ImportError:  # pragma: no cover - run from tests/
    from kube_fake import TOKEN, KubeFake  # type: ignore

NS = "mesh"
GREETER = "aeraki-org-demo-greeter"


@pytest.fixture
def kube():
    fake = KubeFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def zk_root(zookeeper, request):
    return f"/e2e{abs(hash(request.node.name)) % 10 ** 8}"


def start_bridge(fake, url: str, name: str, **settings) -> Bridge:
    opts = SourceOptions(url=url, name=name, namespace=NS)
    kw = {"listen": None, "debounce": 0.2, "max_delay": 3.0, "resync": 600.0, "grace": 60.0, **settings}
    kube = Kube(Connection(server=fake.url, token=TOKEN), timeout=2.0, backoff=0.01)
    return Bridge(Settings(sources=[opts], protocols=["dubbo"], **kw), kube,
                  [(opts, open_source(url, name))]).start()


def endpoints(fake, name=GREETER):
    obj = fake.get("ServiceEntry", NS, name)
    return sorted(e["address"] for e in obj["spec"].get("endpoints", [])) if obj else None


def settle(fake, seconds: float = 1.0) -> int:
    """Writes after ``seconds`` of quiet (the debounce is 0.2 s)."""
    time.sleep(seconds)
    return fake.total_writes()


def test_zookeeper_to_service_entries_unchanged_registry_and_restart_write_nothing(
        kube, zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    for host in ("10.0.0.1", "10.0.0.2"):
        providers.register(dubbo_url("org.demo.Greeter", host=host))
    url = f"zookeeper://{zookeeper.hosts}{zk_root}"
    bridge = start_bridge(kube, url, "zk")
    try:
        wait_until(lambda: endpoints(kube) == ["10.0.0.1", "10.0.0.2"], 15, what="the entry")
        entry = kube.get("ServiceEntry", NS, GREETER)
        assert entry["spec"]["hosts"] == ["org.demo.greeter"]
        assert entry["spec"]["ports"][0]["name"] == "tcp-metaprotocol-dubbo-20880"
        assert entry["spec"]["endpoints"][0]["labels"]["registry"] == "zk"
        writes = settle(kube)
        assert writes == 1
        bridge.request_resync()                    # a full pass over an unchanged registry
        assert settle(kube) == writes
    finally:
        bridge.stop()
    again = start_bridge(kube, url, "zk")          # a restarted bridge
    try:
        wait_until(again.ready, 15, what="the restarted bridge's first sync")
        assert settle(kube) == writes
    finally:
        again.stop()
        providers.close()


def test_zookeeper_killed_mid_run_writes_nothing_and_loses_nothing(kube, tmp_path):
    if not registries.ZooKeeperServer.available:
        pytest.skip("ZooKeeper is not installed (scripts/install.sh installs it)")
    server = registries.ZooKeeperServer(tmp_path / "zk").start()
    providers = registries.DubboProviders(server.hosts)
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.1"))
    bridge = start_bridge(kube, f"zookeeper://{server.hosts}/dubbo", "zk", grace=0.5)
    source = bridge.sources[0][1]
    try:
        wait_until(lambda: endpoints(kube) == ["10.0.0.1"], 15, what="the entry")
        writes = settle(kube)
        server.stop(kill=True)
        wait_until(lambda: not source.healthy(), 10, what="the source to see ZooKeeper gone")
        bridge.request_resync()                    # a full pass while the registry is down
        assert settle(kube, 1.5) == writes         # nothing deleted or emptied, grace or not
        assert endpoints(kube) == ["10.0.0.1"]
        server.start()
        wait_until(source.healthy, 20, what="the reconnect")
        assert settle(kube) == writes              # same registry after the restart: no write
        providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.2"))
        wait_until(lambda: endpoints(kube) == ["10.0.0.1", "10.0.0.2"], 15, what="the new provider")
        assert settle(kube) == writes + 1
    finally:
        bridge.stop()
        providers.close()
        server.stop(kill=True)


def test_zookeeper_provider_session_expired_empties_after_the_grace_period(
        kube, zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    for host in ("10.0.0.1", "10.0.0.2"):
        providers.register(dubbo_url("org.demo.Greeter", host=host))
    bridge = start_bridge(kube, f"zookeeper://{zookeeper.hosts}{zk_root}", "zk", grace=3.0)
    try:
        wait_until(lambda: endpoints(kube) == ["10.0.0.1", "10.0.0.2"], 15, what="the entry")
        writes = settle(kube)
        providers.expire()                         # both providers' ephemeral nodes vanish
        began = time.monotonic()
        time.sleep(1.5)
        assert endpoints(kube) == ["10.0.0.1", "10.0.0.2"]   # n -> 0 held (empty protection)
        wait_until(lambda: endpoints(kube) == [], 10, what="the drop confirmed after the grace")
        assert time.monotonic() - began >= 3.0
        entry = kube.get("ServiceEntry", NS, GREETER)
        assert entry["spec"]["ports"][0]["name"] == "tcp-metaprotocol-dubbo-20880"  # kept
        assert settle(kube) == writes + 1
    finally:
        bridge.stop()
        providers.close()


def test_zookeeper_bridge_session_expired_writes_nothing_then_follows(kube, zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.1"))
    bridge = start_bridge(kube, f"zookeeper://{zookeeper.hosts}{zk_root}", "zk", grace=0.5)
    source = bridge.sources[0][1]
    try:
        wait_until(lambda: endpoints(kube) == ["10.0.0.1"], 15, what="the entry")
        writes = settle(kube)
        registries.expire_session(source.client, zookeeper.hosts)
        assert settle(kube, 1.5) == writes         # a new session, the same registry: no write
        providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.3"))
        wait_until(lambda: endpoints(kube) == ["10.0.0.1", "10.0.0.3"], 15, what="the watch after")
        assert settle(kube) == writes + 1
    finally:
        bridge.stop()
        providers.close()


def test_zookeeper_flapping_provider_makes_one_write(kube, zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.1"))
    flapper = dubbo_url("org.demo.Greeter", host="10.0.0.2")
    bridge = start_bridge(kube, f"zookeeper://{zookeeper.hosts}{zk_root}", "zk",
                          debounce=0.5, max_delay=10.0)
    try:
        wait_until(lambda: endpoints(kube) == ["10.0.0.1"], 15, what="the entry")
        writes = settle(kube)
        for _ in range(100):
            providers.register(flapper)
            providers.unregister(flapper)
        providers.register(flapper)
        wait_until(lambda: endpoints(kube) == ["10.0.0.1", "10.0.0.2"], 15, what="the final state")
        assert settle(kube) == writes + 1
    finally:
        bridge.stop()
        providers.close()


def test_etcd_restart_and_compaction_write_nothing_and_lose_nothing(kube, tmp_path):
    if not registries.EtcdServer.available:
        pytest.skip("etcd is not installed (scripts/install.sh installs etcd-server)")
    server = registries.EtcdServer(tmp_path / "etcd").start()
    instance = {"address": "10.1.0.1", "port": 9000, "protocol": "dubbo"}
    server.put("/services/org.demo.Greeter/a", json.dumps(instance))
    url = f"etcd://127.0.0.1:{server.port}/services?layout=json&idle=1"
    bridge = start_bridge(kube, url, "etcd", grace=0.5)
    source = bridge.sources[0][1]
    try:
        wait_until(lambda: endpoints(kube) == ["10.1.0.1"], 15, what="the entry")
        writes = settle(kube)
        revision = 0
        for i in range(20):
            revision = server.put("/unrelated", str(i))
        server.compact(revision)                   # the watch reopens at a compacted revision
        assert settle(kube, 2.5) == writes
        server.stop(kill=True)
        wait_until(lambda: not source.healthy(), 10, what="the source to see etcd gone")
        bridge.request_resync()
        assert settle(kube, 1.5) == writes and endpoints(kube) == ["10.1.0.1"]
        server.start()
        wait_until(source.healthy, 20, what="the reconnect")
        assert settle(kube) == writes
        server.put("/services/org.demo.Greeter/b", json.dumps(dict(instance, address="10.1.0.2")))
        wait_until(lambda: endpoints(kube) == ["10.1.0.1", "10.1.0.2"], 15, what="the new instance")
        assert settle(kube) == writes + 1
    finally:
        bridge.stop()
        server.stop(kill=True)
