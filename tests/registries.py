"""Real registries for tests: ZooKeeper and etcd started on 127.0.0.1 in temp dirs, and Dubbo-style
providers registered in them the way Dubbo registers (reusable by any bridge test).

- :class:`ZooKeeperServer`: Debian's ``zookeeper`` (3.8) run as ``ZooKeeperServerMain`` on a free
  port; ``stop(kill=True)`` / ``start()`` keep the data dir and the port (a restart mid-run).
- :class:`EtcdServer`: Debian's ``etcd-server`` (3.4), client and peer URLs on 127.0.0.1; ``put``,
  ``delete``, ``compact``, leases over the v3 JSON gateway.
- :class:`DubboProviders`: one ZooKeeper session of "provider processes": persistent
  ``/dubbo/<interface>/providers`` parents, one ephemeral node per provider named
  ``quote(url, safe="")``; ``expire()`` expires that session the way a provider's session expires
  (its ephemeral nodes vanish).
- :func:`dubbo_url`: a provider URL as Dubbo writes it.

Fixtures ``zookeeper`` and ``etcd`` (module scope) skip with the reason when the server is absent.
Everything is stopped at the end; nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Optional
from urllib.parse import quote

import pytest

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CONF = Path("/etc/zookeeper/conf")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _Process:
    """A server process in its own process group, stopped by its pid only."""

    proc: Optional[subprocess.Popen] = None

    def _spawn(self, argv, log: Path) -> None:
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


class ZooKeeperServer(_Process):
    available = ZK_JAR.exists() and shutil.which("java") is not None

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.port = free_port()
        self.hosts = f"127.0.0.1:{self.port}"
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.cfg = self.dir / "zoo.cfg"
        self.cfg.write_text("\n".join([
            "tickTime=500", "initLimit=10", "syncLimit=5",
            f"dataDir={self.dir / 'data'}", f"clientPort={self.port}",
            "clientPortAddress=127.0.0.1", "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr", "maxSessionTimeout=20000", ""]))

    def start(self, timeout: float = 60.0) -> "ZooKeeperServer":
        self._spawn(["java", "-Xmx256m", "-cp", f"{ZK_CONF}:{ZK_JAR}",
                     "org.apache.zookeeper.server.ZooKeeperServerMain", str(self.cfg)],
                    self.dir / "zookeeper.log")
        wait_until(self.ruok, timeout, 0.2, f"ZooKeeper on {self.hosts} (log {self.dir}/zookeeper.log)")
        return self

    def ruok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"ruok")
                return sock.recv(16) == b"imok"
        except OSError:
            return False


class EtcdServer(_Process):
    available = shutil.which("etcd") is not None

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "EtcdServer":
        peer = f"http://127.0.0.1:{self.peer_port}"
        self._spawn(["etcd", "--name", "bridge-test", "--data-dir", str(self.dir / "data"),
                     "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", f"bridge-test={peer}"], self.dir / "etcd.log")
        wait_until(self.ready, timeout, 0.2, f"etcd on {self.endpoint} (log {self.dir}/etcd.log)")
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=1) as resp:
                return json.load(resp).get("health") == "true"
        except (OSError, ValueError):
            return False

    def call(self, path: str, body: Dict) -> Dict:
        req = urllib.request.Request(self.endpoint + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def put(self, key: str, value: str, lease: Optional[str] = None) -> int:
        body = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = lease
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key: str) -> int:
        return int(self.call("/v3/kv/deleterange", {"key": _b64(key)})["header"]["revision"])

    def delete_prefix(self, prefix: str) -> None:
        self.call("/v3/kv/deleterange", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))})

    def compact(self, revision: int) -> None:
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def grant(self, ttl: int) -> str:
        return self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"]

    def revoke(self, lease: str) -> None:
        self.call("/v3/lease/revoke", {"ID": lease})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def dubbo_url(interface: str, host: str = "10.0.0.1", port: int = 20880, scheme: str = "dubbo",
              **params: str) -> str:
    """A provider URL as Dubbo writes it (parameters sorted, like URL.toFullString)."""
    base = {"anyhost": "true", "application": "demo-provider", "interface": interface,
            "methods": "sayHello,sayGoodbye", "side": "provider", "dubbo": "2.0.2",
            "release": "2.7.23", "revision": "1.0.0", "timestamp": "1700000000000"}
    base.update(params)
    query = "&".join(f"{k}={v}" for k, v in sorted(base.items()))
    return f"{scheme}://{host}:{port}/{interface}?{query}"


class DubboProviders:
    """Provider registrations in ZooKeeper from one separate session, exactly as Dubbo does."""

    def __init__(self, hosts: str, root: str = "/dubbo"):
        from kazoo.client import KazooClient

        self.hosts = hosts
        self.root = root
        self.client = KazooClient(hosts=hosts, timeout=10)
        self.client.start(timeout=15)

    def path(self, url: str) -> str:
        interface = url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        return f"{self.root}/{interface}/providers/{quote(url, safe='')}"

    def register(self, url: str) -> str:
        path = self.path(url)
        directory = path.rsplit("/", 1)[0]
        self.client.ensure_path(directory)
        # a Dubbo provider also subscribes to its configurators (creating that directory)
        self.client.ensure_path(directory.rsplit("/", 1)[0] + "/configurators")
        self.client.create(path, url.encode(), ephemeral=True)
        return path

    def unregister(self, url: str) -> None:
        self.client.delete(self.path(url))

    def expire(self) -> None:
        """Expire this session on the server: its ephemeral provider nodes vanish."""
        from kazoo.protocol.states import KazooState

        lost = []
        self.client.add_listener(lambda state: lost.append(state == KazooState.LOST))
        expire_session(self.client, self.hosts)
        wait_until(lambda: any(lost), 20, what="the provider session to expire")

    def close(self) -> None:
        self.client.stop()
        self.client.close()


def expire_session(client, hosts: str) -> None:
    """Expire a kazoo client's session from the server side (as a long partition would)."""
    from kazoo.client import KazooClient

    session_id, password = client.client_id
    thief = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=10)
    thief.start(timeout=15)
    thief.stop()
    thief.close()


@pytest.fixture(scope="module")
def zookeeper():
    if not ZooKeeperServer.available:
        pytest.skip(f"ZooKeeper is not installed ({ZK_JAR} and java; scripts/install.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="bridge-zk-") as tmp:
        server = ZooKeeperServer(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop(kill=True)


@pytest.fixture(scope="module")
def etcd():
    if not EtcdServer.available:
        pytest.skip("etcd is not installed (Debian etcd-server; scripts/install.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="bridge-etcd-") as tmp:
        server = EtcdServer(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop(kill=True)
