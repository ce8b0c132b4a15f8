"""``codecgen bridge register`` against a real ZooKeeper on 127.0.0.1 (tests/registries.py): the
node is where and what Dubbo writes, the bridge's own zookeeper source reads it back as the
provider, an ephemeral node lives as long as the command, a persistent one outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from codecgen.cli import main
from registries import dubbo_url, wait_until, zookeeper  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent


def _kazoo(hosts):
    from kazoo.client import KazooClient

    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=15)
    return client


def test_ephemeral_registration_lives_with_the_command_and_the_bridge_reads_it(zookeeper):
    from codecgen.bridge.sources.zookeeper import from_url

    url = dubbo_url("org.codecgen.e2e.Register", host="10.1.2.3", port=20880, scheme="awesomerpc",
                    **{"codecgen-subset": "v1"})
    path = f"/e2e/org.codecgen.e2e.Register/providers/{quote(url, safe='')}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "codecgen.cli", "bridge", "register",
                             f"zookeeper://{zookeeper.hosts}/e2e", "--url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    client = _kazoo(zookeeper.hosts)
    try:
        wait_until(lambda: client.exists(path) is not None, 30, what="the provider node")
        data, stat = client.get(path)
        assert data.decode() == url and stat.ephemeralOwner != 0
        assert client.exists("/e2e/org.codecgen.e2e.Register/configurators") is not None
        source = from_url(f"zookeeper://{zookeeper.hosts}/e2e", "zk")
        try:
            (svc,) = source.list().values()
        finally:
            source.close()
        (inst,) = svc.instances
        assert (svc.key, inst.address, inst.port, inst.protocol) == \
            ("org.codecgen.e2e.Register", "10.1.2.3", 20880, "awesomerpc")
        assert inst.labels["codecgen-subset"] == "v1"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"bridge register: ephemeral {path}" in out
        assert client.exists(path) is None  # deleted on SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.stop()
        client.close()


def test_persistent_registration_outlives_the_command(zookeeper, capsys):
    url = dubbo_url("org.codecgen.e2e.Persist", host="10.1.2.4", scheme="awesomerpc")
    assert main(["bridge", "register", f"zookeeper://{zookeeper.hosts}", "--url", url, "--persistent"]) == 0
    path = f"/dubbo/org.codecgen.e2e.Persist/providers/{quote(url, safe='')}"
    assert f"bridge register: persistent {path}" in capsys.readouterr().out
    client = _kazoo(zookeeper.hosts)
    try:
        data, stat = client.get(path)
        assert data.decode() == url and stat.ephemeralOwner == 0
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("registry, url, message", [
    ("etcd://127.0.0.1:2379", "awesomerpc://10.0.0.1:1/x.Y", "only zookeeper://HOST:PORT[/root] is supported"),
    ("zookeeper://127.0.0.1:1", "awesomerpc://10.0.0.1/x.Y", "--url awesomerpc://10.0.0.1/x.Y: not a provider URL"),
    ("zookeeper://127.0.0.1:1", "awesomerpc://10.0.0.1:1/x.Y?side=consumer", "not a provider URL"),
])
def test_bad_registration_is_one_line(registry, url, message, capsys):
    assert main(["bridge", "register", registry, "--url", url]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_ephemeral_node_removed_behind_its_back_is_registered_again(zookeeper):
    """The holding loop re-creates the node when it is gone (as after a lost session)."""
    import threading

    from codecgen.bridge.register import register

    url = dubbo_url("org.codecgen.e2e.Again", host="10.1.2.5", scheme="awesomerpc")
    path = f"/dubbo/org.codecgen.e2e.Again/providers/{quote(url, safe='')}"
    stop, lines = threading.Event(), []
    worker = threading.Thread(target=register, args=(f"zookeeper://{zookeeper.hosts}", url),
                              kwargs={"persistent": False, "stop": stop, "interval": 0.2, "log": lines.append})
    worker.start()
    client = _kazoo(zookeeper.hosts)
    try:
        wait_until(lambda: client.exists(path) is not None, 30, what="the provider node")
        client.delete(path)
        wait_until(lambda: len(lines) == 2, 10, what="the node registered again")
        assert client.exists(path).ephemeralOwner != 0
    finally:
        stop.set()
        worker.join(30)
        client.stop()
        client.close()
    assert lines == [f"bridge register: ephemeral {path}"] * 2
