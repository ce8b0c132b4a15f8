"""Registry sources under faults, at the Source API (list / watch / healthy).

ZooKeeper and etcd are real servers started here on 127.0.0.1 (tests/registries.py), killed and
restarted by the tests; Consul, Nacos and Polaris are the HTTP fakes of their documented APIs
(tests/registry_fakes.py), which cannot run here."""

from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import quote

import pytest

import registries
import registry_fakes
from registries import dubbo_url, etcd, wait_until, zookeeper  # noqa: F401 - fixtures
from codecgen.bridge import dubbo
from codecgen.bridge.model import SourceError
from codecgen.bridge.sources import open_source
from codecgen.errors import UserError


class Recorder:
    """The ``notify`` callback: every call, in order."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, keys):
        with self.lock:
            self.calls.append(set(keys))

    def resyncs(self) -> int:
        with self.lock:
            return sum(1 for keys in self.calls if not keys)

    def keys(self) -> set:
        with self.lock:
            return set().union(*self.calls) if self.calls else set()

    def wait_resync(self, after: int, timeout: float = 20.0) -> None:
        wait_until(lambda: self.resyncs() > after, timeout, what="notify(set()) (a resync)")

    def wait_key(self, key: str, start: int = 0, timeout: float = 10.0) -> None:
        wait_until(lambda: any(key in keys for keys in self.calls[start:]), timeout,
                   what=f"a notification naming {key}")


def instances(source, key):
    return [(i.address, i.port) for i in source.list()[key].instances]


# -- URLs and Dubbo URLs ----------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("zookeeper://127.0.0.1:2181/dubbo?session=3", "unknown parameter 'session'"),
    ("etcd://127.0.0.1:2379?layout=yaml", "layout=yaml is not one of dubbo, json"),
    ("consul://127.0.0.1:8500?wait=forever", "wait=forever is not a positive number of seconds"),
    ("nacos://:8848", "no host"),
    ("polaris://127.0.0.1:notaport", "Port could not be cast"),
])
def test_bad_source_urls_are_refused_naming_the_url(url, message):
    with pytest.raises(UserError) as err:
        open_source(url)
    assert url in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_service_keys_are_positional():
    assert dubbo.service_key("a.B", None, None) == "a.B"
    assert dubbo.service_key("a.B", "g", None) == "a.B:g"
    assert dubbo.service_key("a.B", None, "1.0") == "a.B::1.0"
    assert dubbo.service_key("a.B", "g", "1.0") == "a.B:g:1.0"


def test_node_names_are_decoded_once():
    url = "dubbo://10.0.0.1:20880/a.B?k=%41+b&group=g"
    provider = dubbo.parse_provider(quote(url, safe=""), "a.B")
    assert provider.instance.labels["k"] == "%41+b"        # Dubbo keeps the value as written
    assert provider.key == "a.B:g"
    assert dubbo.parse_provider(url, "a.B").key == "a.B:g"  # an unquoted name reads the same


# -- ZooKeeper (real) -----------------------------------------------------------------------

@pytest.fixture
def zk_server(tmp_path):
    """A ZooKeeper of the test's own, to kill and restart."""
    if not registries.ZooKeeperServer.available:
        pytest.skip("ZooKeeper is not installed (scripts/install.sh installs it)")
    server = registries.ZooKeeperServer(tmp_path / "zk").start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def zk_root(zookeeper, request):
    """A fresh root per test on the shared server."""
    return f"/t{abs(hash(request.node.name)) % 10 ** 8}"


def test_zookeeper_killed_and_restarted_mid_run(zk_server):
    providers = registries.DubboProviders(zk_server.hosts)
    first = dubbo_url("org.demo.Greeter", host="10.0.0.1")
    providers.register(first)
    source = open_source(f"zookeeper://{zk_server.hosts}/dubbo")
    events = Recorder()
    try:
        before = source.list()
        source.watch(events)
        events.wait_resync(0)
        zk_server.stop(kill=True)
        wait_until(lambda: not source.healthy(), 10, what="the source to see the server gone")
        with pytest.raises(SourceError, match="session SUSPENDED|reading"):
            source.list()
        resyncs = events.resyncs()
        zk_server.start()
        events.wait_resync(resyncs)                # notify(set()) after the reconnect
        assert source.healthy()
        assert source.list() == before             # nothing lost: the provider session survived
        start = len(events.calls)
        providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.2"))
        events.wait_key("org.demo.Greeter", start)  # the watch was armed again
        assert instances(source, "org.demo.Greeter") == [("10.0.0.1", 20880), ("10.0.0.2", 20880)]
    finally:
        source.close()
        providers.close()


def test_zookeeper_provider_session_expired(zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.1", version="1.0"))
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.2", version="1.0"))
    source = open_source(f"zookeeper://{zookeeper.hosts}{zk_root}")
    events = Recorder()
    try:
        assert len(source.list()["org.demo.Greeter::1.0"].instances) == 2
        source.watch(events)
        events.wait_resync(0)
        start = len(events.calls)
        providers.expire()                         # the provider processes' session expires
        events.wait_key("org.demo.Greeter::1.0", start)
        wait_until(lambda: source.list()["org.demo.Greeter::1.0"].instances == (), 5,
                   what="the ephemeral providers to vanish")
        assert source.healthy()                    # the bridge's own session is fine
    finally:
        source.close()
        providers.close()


def test_zookeeper_bridge_session_expired(zookeeper, zk_root):
    from kazoo.client import KazooState

    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.1"))
    source = open_source(f"zookeeper://{zookeeper.hosts}{zk_root}")
    events = Recorder()
    seen_while_lost = []

    def on_state(state):                           # runs as the session is declared LOST
        if state == KazooState.LOST:
            try:
                seen_while_lost.append(source.list())
            except SourceError as exc:
                seen_while_lost.append(exc)

    try:
        before = source.list()
        source.watch(events)
        events.wait_resync(0)
        source.client.add_listener(on_state)
        resyncs = events.resyncs()
        registries.expire_session(source.client, zookeeper.hosts)
        events.wait_resync(resyncs)                # a new session, watches armed, resync asked
        assert len(seen_while_lost) == 1 and isinstance(seen_while_lost[0], SourceError)
        # kazoo calls listeners in no set order: the source may not have seen LOST yet
        assert re.search(r"session (SUSPENDED|LOST)", str(seen_while_lost[0]))
        assert source.list() == before and source.healthy()
        start = len(events.calls)
        providers.register(dubbo_url("org.demo.Greeter", host="10.0.0.3"))
        events.wait_key("org.demo.Greeter", start)
    finally:
        source.close()
        providers.close()


def test_zookeeper_flapping_provider_coalesces(zookeeper, zk_root):
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    stable = dubbo_url("org.demo.Greeter", host="10.0.0.1")
    flapper = dubbo_url("org.demo.Greeter", host="10.0.0.2")
    providers.register(stable)
    source = open_source(f"zookeeper://{zookeeper.hosts}{zk_root}")
    events = Recorder()
    try:
        source.list()
        source.watch(events)
        events.wait_resync(0)
        start = len(events.calls)
        began = time.monotonic()
        for _ in range(100):                       # 100 registrations and removals
            providers.register(flapper)
            providers.unregister(flapper)
        providers.register(flapper)
        elapsed = time.monotonic() - began
        events.wait_key("org.demo.Greeter", start)
        time.sleep(0.5)
        flaps = events.calls[start:]
        assert all(keys == {"org.demo.Greeter"} for keys in flaps)
        assert len(flaps) < 50, f"{len(flaps)} notifications for 201 changes in {elapsed:.2f}s"
        assert instances(source, "org.demo.Greeter") == [("10.0.0.1", 20880), ("10.0.0.2", 20880)]
    finally:
        source.close()
        providers.close()


def test_zookeeper_root_created_after_the_watch(zookeeper, zk_root):
    source = open_source(f"zookeeper://{zookeeper.hosts}{zk_root}")
    events = Recorder()
    providers = registries.DubboProviders(zookeeper.hosts, root=zk_root)
    try:
        assert source.list() == {}                 # no root yet: nothing, not an error
        source.watch(events)
        events.wait_resync(0)
        start = len(events.calls)
        providers.register(dubbo_url("org.demo.First", host="10.0.0.1"))
        events.wait_key("org.demo.First", start)
        assert instances(source, "org.demo.First") == [("10.0.0.1", 20880)]
    finally:
        source.close()
        providers.close()


def test_zookeeper_unreachable_at_start_then_up(tmp_path):
    if not registries.ZooKeeperServer.available:
        pytest.skip("ZooKeeper is not installed (scripts/install.sh installs it)")
    server = registries.ZooKeeperServer(tmp_path / "zk")   # port chosen, nothing listening yet
    source = open_source(f"zookeeper://{server.hosts}/dubbo?connect_timeout=1s")
    events = Recorder()
    try:
        with pytest.raises(SourceError, match="cannot connect"):
            source.list()
        assert not source.healthy()
        source.watch(events)                       # keeps trying in the background
        time.sleep(1.5)
        assert events.calls == []
        server.start()
        providers = registries.DubboProviders(server.hosts)
        providers.register(dubbo_url("org.demo.Late", host="10.0.0.9"))
        events.wait_resync(0, timeout=30)
        wait_until(lambda: "org.demo.Late" in source.list(), 10, what="the late provider")
        providers.close()
    finally:
        source.close()
        server.stop(kill=True)


def test_real_dubbo_client_reads_what_we_register_and_its_consumer_node_is_skipped(
        zookeeper, zk_root):
    """dubbo-ssl-python's ZooKeeper registry client (a real Dubbo client library) finds the
    provider registered by tests/registries.py, and registers itself as a consumer node, which
    the source ignores."""
    dubbo_ssl = pytest.importorskip("dubbo_ssl.client")
    providers = registries.DubboProviders(zookeeper.hosts)     # the library reads /dubbo only
    url = dubbo_url("org.demo.RealClient", host="10.0.0.5", port=20881, group="g", version="1.2")
    providers.register(url)
    register = dubbo_ssl.ZkRegister(zookeeper.hosts, application_name="bridge-test")
    source = open_source(f"zookeeper://{zookeeper.hosts}/dubbo")
    try:
        assert register.get_provider_host("org.demo.RealClient", "1.2", "g") == "10.0.0.5:20881"
        consumers = "/dubbo/org.demo.RealClient/consumers"
        wait_until(lambda: providers.client.exists(consumers) and
                   providers.client.get_children(consumers), 10, what="the consumer node")
        snapshot = source.list()
        assert [(i.address, i.port) for i in snapshot["org.demo.RealClient:g:1.2"].instances] == \
            [("10.0.0.5", 20881)]
    finally:
        source.close()
        register.zk.stop()
        register.zk.close()
        providers.close()


# -- etcd (real) ------------------------------------------------------------------------------

@pytest.fixture
def etcd_server(tmp_path):
    if not registries.EtcdServer.available:
        pytest.skip("etcd is not installed (scripts/install.sh installs etcd-server)")
    server = registries.EtcdServer(tmp_path / "etcd").start()
    yield server
    server.stop(kill=True)


def json_instance(address, port=9000, **extra):
    return json.dumps(dict(address=address, port=port, **extra))


def test_etcd_killed_and_restarted_resyncs(etcd_server):
    etcd_server.put("/services/echo/a", json_instance("10.1.0.1"))
    source = open_source(f"etcd://127.0.0.1:{etcd_server.port}/services?layout=json")
    events = Recorder()
    try:
        before = source.list()
        source.watch(events)
        events.wait_resync(0)
        etcd_server.stop(kill=True)
        with pytest.raises(SourceError, match="Connection refused"):
            source.list()
        wait_until(lambda: not source.healthy(), 10, what="the source to see etcd gone")
        resyncs = events.resyncs()
        etcd_server.start()
        events.wait_resync(resyncs)
        assert source.list() == before and source.healthy()
        start = len(events.calls)
        etcd_server.put("/services/echo/b", json_instance("10.1.0.2"))
        events.wait_key("echo", start)
        assert instances(source, "echo") == [("10.1.0.1", 9000), ("10.1.0.2", 9000)]
    finally:
        source.close()


def test_etcd_compaction_forces_a_full_resync(etcd):
    etcd.delete_prefix("/")
    etcd.put("/compact/echo/a", json_instance("10.1.1.1"))
    # idle=1s: the watch stream is reopened from its last revision after 1 s without events
    source = open_source(f"etcd://127.0.0.1:{etcd.port}/compact?layout=json&idle=1")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)
        revision = 0
        for i in range(20):                        # history elsewhere, then compacted away
            revision = etcd.put("/unrelated/key", str(i))
        etcd.compact(revision)
        events.wait_resync(1, timeout=10)          # reopening at an old revision: ErrCompacted
        start = len(events.calls)
        etcd.put("/compact/echo/b", json_instance("10.1.1.2"))
        events.wait_key("echo", start)             # and the watch goes on after the resync
        assert instances(source, "echo") == [("10.1.1.1", 9000), ("10.1.1.2", 9000)]
    finally:
        source.close()


def test_etcd_lease_expiry_removes_providers(etcd):
    etcd.delete_prefix("/")
    url = dubbo_url("org.demo.Leased", host="10.1.2.1")
    key = f"/dubbo/org.demo.Leased/providers/{quote(url, safe='')}"
    lease = etcd.grant(60)
    etcd.put(key, url, lease=lease)
    source = open_source(f"etcd://127.0.0.1:{etcd.port}")
    events = Recorder()
    try:
        assert instances(source, "org.demo.Leased") == [("10.1.2.1", 20880)]
        source.watch(events)
        events.wait_resync(0)
        start = len(events.calls)
        etcd.revoke(lease)                         # what an expired lease does to its keys
        events.wait_key("org.demo.Leased", start)
        assert "org.demo.Leased" not in source.list()
    finally:
        source.close()


def test_etcd_flapping_instance_coalesces(etcd):
    etcd.delete_prefix("/")
    etcd.put("/flap/echo/stable", json_instance("10.1.3.1"))
    source = open_source(f"etcd://127.0.0.1:{etcd.port}/flap?layout=json")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)
        start = len(events.calls)
        for _ in range(100):
            etcd.put("/flap/echo/flapper", json_instance("10.1.3.2"))
            etcd.delete("/flap/echo/flapper")
        etcd.put("/flap/echo/flapper", json_instance("10.1.3.2"))
        last = etcd.put("/flap/other/x", json_instance("10.1.3.9"))
        events.wait_key("other", start)
        assert last > 200
        flaps = events.calls[start:]
        assert set().union(*flaps) == {"echo", "other"}
        assert len(flaps) < 50, f"{len(flaps)} notifications for 202 changes"
        assert instances(source, "echo") == [("10.1.3.1", 9000), ("10.1.3.2", 9000)]
    finally:
        source.close()


# -- Consul, Nacos, Polaris (HTTP fakes) -----------------------------------------------------

@pytest.fixture
def consul():
    fake = registry_fakes.FakeConsul().start()
    yield fake
    fake.stop()


def test_consul_blocking_queries_see_changes_at_once(consul):
    consul.register("greeter", "g1", "10.2.0.1", 9000)
    source = open_source(f"consul://127.0.0.1:{consul.port}?wait=20s")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)
        events.wait_key("greeter")                 # the health watcher's first answer
        time.sleep(0.3)
        start = len(events.calls)
        began = time.monotonic()
        consul.set_status("greeter", "g1", "critical")
        events.wait_key("greeter", start, timeout=5)
        assert time.monotonic() - began < 2        # answered on change, not at the 20 s wait
        assert source.list()["greeter"].instances[0].healthy is False
        blocking = [q for path, q in consul.requests if q.get("index")]
        assert blocking and all(q["wait"] == "20000ms" for q in blocking)
        assert {p for p, q in consul.requests if q.get("index")} == \
            {"/v1/catalog/services", "/v1/health/service/greeter"}
        start = len(events.calls)
        consul.register("billing", "b1", "10.2.0.2", 9100)
        events.wait_key("billing", start, timeout=5)
        consul.deregister("billing", "b1")
        wait_until(lambda: "billing" not in source.list(), 5, what="billing to leave")
    finally:
        source.close()


def test_consul_error_answer_and_unreachable(consul):
    consul.register("greeter", "g1", "10.2.0.1", 9000)
    source = open_source(f"consul://127.0.0.1:{consul.port}?wait=1s&timeout=2s")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)
        mark = len(consul.requests)
        consul.fail_with = 500
        with pytest.raises(SourceError, match=r"/v1/catalog/services.*HTTP 500"):
            source.list()
        assert not source.healthy()
        wait_until(lambda: sum(1 for p, _ in consul.requests[mark:]
                               if p == "/v1/catalog/services") >= 2, 5,
                   what="the catalog watch to meet the 500s too")
        consul.fail_with = None
        events.wait_resync(1, timeout=10)
        assert source.healthy()
        consul.stop()
        with pytest.raises(SourceError, match="Connection refused"):
            source.list()
        assert not source.healthy()
        resyncs = events.resyncs()
        time.sleep(1.5)                            # the watch's 1 s blocking query ends, then fails
        consul.start()                             # same port
        events.wait_resync(resyncs, timeout=10)
        assert instances(source, "greeter") == [("10.2.0.1", 9000)]
    finally:
        source.close()


def test_consul_malformed_entry_is_an_error_not_a_partial_snapshot(consul):
    consul.register("greeter", "g1", "10.2.0.1", 9000)
    consul.register("billing", "b1", "10.2.0.2", 9100)
    del consul.services["billing"]["entries"]["b1"]["Service"]["Port"]
    source = open_source(f"consul://127.0.0.1:{consul.port}")
    try:
        with pytest.raises(SourceError, match="consul service billing: malformed entry"):
            source.list()
        assert not source.healthy()
    finally:
        source.close()


def test_consul_index_going_backwards_resets_the_watch(consul):
    consul.register("greeter", "g1", "10.2.0.1", 9000)
    source = open_source(f"consul://127.0.0.1:{consul.port}?wait=1s")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)
        time.sleep(0.3)
        with consul.changed:                       # e.g. a Consul restored from a snapshot
            consul.index = consul.catalog_index = 1
            consul.services["greeter"]["index"] = 1
            consul.changed.notify_all()
        count = len(consul.requests)
        wait_until(lambda: any(p == "/v1/catalog/services" and "index" not in q
                               for p, q in consul.requests[count:]), 5,
                   what="a non-blocking catalog query (index reset to 0)")
    finally:
        source.close()


def test_nacos_polling_paging_errors_and_unreachable():
    fake = registry_fakes.FakeNacos().start()
    for i in range(501):                           # more than one page of 500
        fake.add_service(f"svc-{i:03d}")
    fake.add_instance("svc-000", "10.3.0.1", 8080)
    source = open_source(f"nacos://127.0.0.1:{fake.port}?interval=0.2")
    events = Recorder()
    try:
        assert len(source.list()) == 501
        source.watch(events)
        events.wait_resync(0)
        fake.add_instance("svc-500", "10.3.0.2", 8080, healthy=False)
        wait_until(lambda: "DEFAULT_GROUP@@svc-500" in events.keys(), 10, what="the poll")
        assert source.list()["DEFAULT_GROUP@@svc-500"].instances[0].healthy is False
        fake.fail_with = 403
        with pytest.raises(SourceError, match="HTTP 403"):
            source.list()
        fake.fail_with = None
        resyncs = events.resyncs()
        fake.stop()
        with pytest.raises(SourceError, match="Connection refused"):
            source.list()
        fake.start()
        events.wait_resync(resyncs, timeout=10)
        assert source.healthy()
    finally:
        source.close()
        fake.stop()


def test_nacos_service_vanishing_mid_read_is_an_error_not_a_partial_snapshot():
    fake = registry_fakes.FakeNacos().start()
    fake.add_instance("a", "10.3.1.1", 1)
    fake.add_instance("b", "10.3.1.2", 1)
    source = open_source(f"nacos://127.0.0.1:{fake.port}")
    original = fake.handle

    def racing(path, query):                       # b is deleted between the two calls
        if path.endswith("/instance/list") and query.get("serviceName") == "b":
            return 404, {}, b"caused: service not found: DEFAULT_GROUP@@b;"
        return original(path, query)

    fake.handle = racing
    try:
        with pytest.raises(SourceError, match="HTTP 404"):
            source.list()
        assert not source.healthy()
    finally:
        source.close()
        fake.stop()


def test_polaris_named_services_paging_and_error_codes():
    fake = registry_fakes.FakePolaris().start()
    for i in range(101):                           # more than one page of 100
        fake.add_instance("echo", f"10.4.0.{i % 250}", 9000 + i, namespace="Test")
    source = open_source(f"polaris://127.0.0.1:{fake.port}?namespace=Test&service=echo")
    missing = open_source(f"polaris://127.0.0.1:{fake.port}?namespace=Test&service=echo,ghost")
    try:
        assert len(source.list()["Test/echo"].instances) == 101
        with pytest.raises(SourceError, match="not found service"):
            missing.list()
        assert not missing.healthy() and source.healthy()
        fake.stop()
        with pytest.raises(SourceError, match="Connection refused"):
            source.list()
    finally:
        source.close()
        missing.close()
        fake.stop()


def test_polaris_polling_notifies_changed_services_only():
    fake = registry_fakes.FakePolaris().start()
    fake.add_instance("echo", "10.4.1.1", 9000)
    fake.add_instance("quiet", "10.4.1.2", 9000)
    source = open_source(f"polaris://127.0.0.1:{fake.port}?interval=0.2")
    events = Recorder()
    try:
        source.watch(events)
        events.wait_resync(0)                      # watching starts with a resync
        fake.add_instance("echo", "10.4.1.3", 9000, isolate=True)
        wait_until(lambda: len(events.calls) > 1, 5, what="a poll")
        time.sleep(0.5)
        assert events.calls == [set(), {"default/echo"}]
    finally:
        source.close()
        fake.stop()


def test_sources_close_promptly():
    """close() ends every thread a source started, even one held in a blocking query."""
    consul = registry_fakes.FakeConsul().start()
    consul.register("greeter", "g1", "10.2.0.1", 9000)
    source = open_source(f"consul://127.0.0.1:{consul.port}?wait=60s")
    try:
        source.watch(Recorder())
        wait_until(lambda: sum(1 for _, q in consul.requests if q.get("index")) >= 2, 5,
                   what="blocking queries in flight")
        began = time.monotonic()
        source.close()
        assert time.monotonic() - began < 2
        assert not [t for t in threading.enumerate() if t.name.startswith("bridge-consul")]
    finally:
        consul.stop()

