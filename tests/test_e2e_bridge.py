"""The bridge scenario of ``codecgen e2e run --bridge``, as far as it runs without a cluster.

- Its manifests validate against the schemas kept in the project and fit together: the
  providers register the URLs the routes expect, the bridge Deployment is ``codecgen bridge
  manifests`` for the in-cluster ZooKeeper with the sample image.
- The chain registry -> ServiceEntry -> routes with the real pieces: the providers' URLs
  registered in a real ZooKeeper on 127.0.0.1 by ``codecgen bridge register`` (as the provider
  pods run it), ``codecgen bridge once`` reading them with the scenario's own ``--source``
  options, and the ServiceEntry it writes matching the scenario's DestinationRule and MetaRouter
  (host, subsets by endpoint label, MetaProtocol port name).
- The run's steps in order against the stand-ins for kind, kubectl and istioctl of
  tests/test_e2e.py: after the base checks, the scenario's files applied, its Deployments
  awaited, the ServiceEntry polled by the bridge's labels, the probe to the entry's host.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from codecgen import pins
from codecgen.backends.k8s.validate import validate_all
from codecgen.cli import main
from codecgen.e2e import CLIENT, SUBSETS, bridge, make_plan, manifests
from registries import zookeeper  # noqa: F401 - fixture
from test_e2e import IMAGE, _tag, docs_of, local_net, standins  # noqa: F401 - fixtures

try:  # tests/ may or may not become a package
    from tests.dockerd import busybox_image, dockerd  # noqa: F401  (fixtures)
except ImportError:  # pragma: no cover
    from dockerd import busybox_image, dockerd  # type: ignore  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SPECS = [ROOT / "protocols" / f"{name}.py" for name in ("awesomerpc", "meshrpc")]


def _by_kind(docs):
    out = {}
    for ds in docs.values():
        for d in ds:
            out.setdefault(d["kind"], []).append(d)
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_bridge_manifests_validate_and_fit_together(spec):
    plan = make_plan(str(spec), IMAGE)
    e2e = pins.get_e2e()
    files = bridge.manifests(plan, e2e)
    assert list(files) == sorted(files) and min(files) > max(manifests(plan))  # applied after the base run's
    by_kind = _by_kind(docs_of(files))
    (dr,) = by_kind["DestinationRule"]
    (mr,) = by_kind["MetaRouter"]
    (zk_svc,) = by_kind["Service"]
    # (the MetaRouter's host is the ServiceEntry the bridge writes in the cluster: validated with
    # it below, in the test that has the bridge write it)
    assert validate_all([dr, zk_svc]) == []
    host = bridge.entry_host(plan)
    assert host == f"org.codecgen.e2e.{plan.proto.name}"
    assert mr["spec"]["hosts"] == [host] == [dr["spec"]["host"]]
    assert [r["route"][0]["destination"] for r in mr["spec"]["routes"]] == [{"host": host, "subset": s} for s in SUBSETS]
    assert {s["name"]: s["labels"] for s in dr["spec"]["subsets"]} == {s: {"codecgen-subset": s} for s in SUBSETS}
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert [(ns, name) for ns, name in bridge.deployments(plan)] == \
        [(deployments[name]["metadata"]["namespace"], name) for _, name in bridge.deployments(plan)]
    zk = deployments["zookeeper"]["spec"]["template"]
    assert zk["spec"]["containers"][0]["image"] == e2e.zookeeper_image
    assert zk_svc["spec"]["selector"] == zk["metadata"]["labels"] and zk_svc["spec"]["ports"][0]["port"] == 2181
    for subset in SUBSETS:
        pod = deployments[f"{plan.service}-provider-{subset}"]["spec"]["template"]
        server, register = pod["spec"]["containers"]
        assert server["args"][-1] == subset and register["image"] == server["image"] == plan.sample_image
        assert register["args"] == ["bridge", "register",
                                    "zookeeper://zookeeper.codecgen-e2e.svc.cluster.local:2181/dubbo",
                                    "--url", bridge.provider_url(plan, subset)]
        assert register["env"] == [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    container = deployments["codecgen-bridge"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == plan.sample_image and container["imagePullPolicy"] == "IfNotPresent"
    args = container["args"]
    assert args[args.index("--source") + 1] == bridge.source_arg(plan)
    assert args[args.index("--protocol") + 1] == f"/etc/codecgen/protocols/{spec.name}"
    (cm,) = by_kind["ConfigMap"]
    assert cm["data"] == {spec.name: spec.read_text()}
    roles = {r["metadata"]["namespace"]: r["rules"] for r in by_kind["Role"]}
    assert roles["codecgen-e2e"][0]["resources"] == ["serviceentries"]


def test_the_entry_the_bridge_writes_from_the_registered_providers_fits_the_routes(zookeeper, tmp_path, capsys):
    """Real ZooKeeper, the real register and bridge commands with the scenario's arguments
    (pod IPs filled in, the registry's address made local)."""
    spec = SPECS[0]
    plan = make_plan(str(spec), IMAGE)
    local = f"zookeeper://{zookeeper.hosts}/dubbo"
    for i, subset in enumerate(SUBSETS):
        url = bridge.provider_url(plan, subset, address=f"10.244.0.{10 + i}")
        assert main(["bridge", "register", local, "--url", url, "--persistent"]) == 0
    source = bridge.source_arg(plan).replace(bridge.registry_url(plan), local)
    assert main(["bridge", "once", "--source", source, "--protocol", str(spec), "-o", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    entries = [d for p in sorted((tmp_path / "out").rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text())
               if d and d["kind"] == "ServiceEntry"]
    (entry,) = entries
    by_kind = _by_kind(docs_of(bridge.manifests(plan, pins.get_e2e())))
    (dr,) = by_kind["DestinationRule"]
    (mr,) = by_kind["MetaRouter"]
    (app_protocol,) = docs_of(manifests(plan))["10-applicationprotocol.yaml"]  # the base run's, in the cluster
    assert validate_all([app_protocol, entry, dr, mr]) == []  # the routes' host is the entry's
    assert entry["metadata"]["labels"].items() >= bridge.ENTRY_LABELS.items()
    assert entry["metadata"]["namespace"] == plan.namespace
    assert bridge.entry_ready([entry], bridge.entry_host(plan), len(SUBSETS)) is None
    (port,) = entry["spec"]["ports"]
    assert port == {"number": plan.port, "name": f"tcp-metaprotocol-{plan.proto.name}-{plan.port}", "protocol": "TCP"}
    subsets = {s["name"]: s["labels"] for s in dr["spec"]["subsets"]}
    for i, subset in enumerate(SUBSETS):
        chosen = [e["address"] for e in entry["spec"]["endpoints"] if e["labels"].items() >= subsets[subset].items()]
        assert chosen == [f"10.244.0.{10 + i}"]  # each subset selects exactly its provider


def test_entry_ready_says_what_is_missing():
    host = "org.codecgen.e2e.x"
    entry = {"metadata": {"name": "aeraki-org-codecgen-e2e-x"}, "spec": {"hosts": [host], "endpoints": [{}]}}
    assert bridge.entry_ready([], host, 2) == f"no ServiceEntry for {host} (labelled manager=aeraki,registry=zk)"
    assert bridge.entry_ready([entry], host, 2) == "ServiceEntry aeraki-org-codecgen-e2e-x has 1 endpoint(s), 2 expected"
    assert bridge.entry_ready([entry], host, 1) is None


@pytest.mark.docker
def test_run_with_bridge_drives_the_scenario_after_the_base_checks(dockerd, busybox_image, standins, local_net,
                                                                  tmp_path, monkeypatch, capsys):
    spec = ROOT / "protocols" / "awesomerpc.py"
    sample = "codecgen-test/sample:e2e"
    _tag(dockerd, busybox_image, IMAGE)
    _tag(dockerd, busybox_image, sample)
    plan = make_plan(str(spec), IMAGE, sample)
    host = bridge.entry_host(plan)
    entries = tmp_path / "entries.json"
    entries.write_text(json.dumps({"items": [{"metadata": {"name": "aeraki-x"},
                                              "spec": {"hosts": [host], "endpoints": [{}, {}]}}]}))
    monkeypatch.setenv("STANDIN_ENTRIES", str(entries))
    work = tmp_path / "work"
    code = main(["e2e", "run", str(spec), "--image", IMAGE, "--sample-image", sample, "--no-sample-build",
                 "--docker-host", dockerd, "--work-dir", str(work), "--bridge"])
    out, err = capsys.readouterr()
    assert code == 0, err
    calls = standins()
    commands = [(c["tool"], c["argv"]) for c in calls if c["tool"] != "istioctl-operator"]
    ctx = ["--context", "kind-codecgen-e2e"]
    base_probe = ("kubectl", [*ctx, "-n", "codecgen-e2e", "exec", f"deploy/{CLIENT}", "-c", "client", "--",
                              *plan.probe_argv()])
    files = bridge.manifests(plan, pins.get_e2e())
    after = commands[commands.index(base_probe) + 1:]
    expected = [
        ("kubectl", [*ctx, "apply", "-f", "-"]),  # ZooKeeper, awaited before the providers register
        ("kubectl", [*ctx, "-n", "codecgen-e2e", "rollout", "status", "deploy/zookeeper", "--timeout=300s"]),
        *[("kubectl", [*ctx, "apply", "-f", "-"])] * (len(files) - 1),
        *[("kubectl", [*ctx, "-n", ns, "rollout", "status", f"deploy/{d}", "--timeout=300s"])
          for ns, d in (("codecgen-e2e", "awesomerpc-provider-v1"),
                        ("codecgen-e2e", "awesomerpc-provider-v2"), ("codecgen-bridge", "codecgen-bridge"))],
        ("kubectl", [*ctx, "-n", "codecgen-e2e", "get", "serviceentry", "-l", "manager=aeraki,registry=zk",
                     "-o", "json"]),
        ("kubectl", [*ctx, "-n", "codecgen-e2e", "exec", f"deploy/{CLIENT}", "-c", "client", "--",
                     *plan.probe_argv(host)]),
        ("kind", ["delete", "cluster", "--name", "codecgen-e2e"]),
    ]
    assert after == expected
    applied = [c["stdin"] for c in calls if c["tool"] == "kubectl" and "stdin" in c]
    assert applied[-len(files):] == [files[name] for name in sorted(files)]
    assert f"--to {host}:{plan.port}" in out
    assert f"e2e: awesomerpc: every check passed through {host}, the ServiceEntry codecgen bridge wrote" in out
    assert (work / "manifests" / "75-providers.yaml").read_text() == files["75-providers.yaml"]
