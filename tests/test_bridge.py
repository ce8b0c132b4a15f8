"""``codecgen bridge`` without a cluster: the mapping rules, per-source options, the ``file://``
source, ``bridge once`` golden output (slime style: a registry in YAML in, the expected objects
out, under tests/fixtures/bridge/<case>/), the CLI's one-line errors and ``bridge manifests``.

Regenerate the golden files after a deliberate change with ``CODECGEN_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from codecgen.backends.k8s.validate import validate
from codecgen.bridge.config import SourceOptions, load_protocols, parse_source, parse_sources
from codecgen.bridge.mapping import Mapper, Placement, Refused
from codecgen.bridge.model import Instance, Service, SourceError
from codecgen.bridge.sources import open_source
from codecgen.bridge.sources.file import FileSource
from codecgen.cli import main
from codecgen.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "bridge"


def opts(**kw) -> SourceOptions:
    return SourceOptions(**{"url": "memory://", "name": "zk", "namespace": "mesh", **kw})


def mapper(**kw) -> Mapper:
    return Mapper({"zk": opts(**kw)}, ["dubbo", "meshrpc"])


def service(name="org.demo.Greeter", *instances, **attrs) -> Service:
    return Service(source="zk", key=name, name=name, attributes=attrs,
                   instances=instances or (Instance("10.0.0.1", 20880, "dubbo"),))


# --------------------------------------------------------------------------- mapping


def test_dubbo_host_name_and_namespace():
    place = mapper().place(service("org.Demo.Greeter", group="G1", version="1.2.3"))
    assert place == Placement("mesh", "org.demo.greeter-g1-1-2-3", "aeraki-org-demo-greeter-g1-1-2-3")


def test_registry_namespace_and_host_template():
    svc = Service(source="zk", key="k", name="orders", namespace="Prod",
                  instances=(Instance("10.0.0.1", 1, "dubbo"),))
    assert mapper().place(svc).host == "orders.prod"
    assert mapper(host="{name}.{source}.example").place(svc).host == "orders.zk.example"


def test_unknown_protocol_and_invalid_host_are_refused_not_guessed():
    with pytest.raises(Refused, match="protocol tri is not one of the --protocol specs") as info:
        mapper().place(service("a.B", Instance("10.0.0.1", 1, "tri")))
    assert info.value.reason == "unknown-protocol"
    assert mapper(protocol="meshrpc").place(service("a.B", Instance("10.0.0.1", 1, "tri"))).host == "a.b"
    with pytest.raises(Refused, match="not a DNS-1123 subdomain") as info:
        mapper().place(service("my_service"))
    assert info.value.reason == "invalid"
    with pytest.raises(Refused, match="DNS-1123"):
        mapper().place(service("a" * 64 + ".b"))


def test_entry_ports_endpoints_labels_and_resolution():
    m = mapper()
    svc = service("x.Y",
                  Instance("10.0.0.1", 20880, "dubbo", labels={"app": "a", "methods": "a,b", "k/../x": "1"}),
                  Instance("10.0.0.2", 20881, "dubbo", weight=7, locality="r/z"),
                  Instance("10.0.0.3", 20880, "dubbo"),
                  Instance("10.0.0.4", 20880, "dubbo", healthy=False),
                  Instance("10.0.0.5", 9000, "meshrpc"))
    entry = m.entry(m.place(svc), [(opts(), svc)])
    assert entry["spec"]["ports"] == [
        {"number": 20880, "name": "tcp-metaprotocol-dubbo-20880", "protocol": "TCP"},
        {"number": 9000, "name": "tcp-metaprotocol-meshrpc-9000", "protocol": "TCP"}]
    eps = {e["address"]: e for e in entry["spec"]["endpoints"]}
    assert sorted(eps) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"]
    assert eps["10.0.0.1"]["labels"] == {"app": "a", "registry": "zk"}
    assert eps["10.0.0.2"] == {"address": "10.0.0.2", "ports": {"tcp-metaprotocol-dubbo-20880": 20881},
                               "labels": {"registry": "zk"}, "weight": 7, "locality": "r/z"}
    assert entry["spec"]["resolution"] == "STATIC" and entry["spec"]["location"] == "MESH_INTERNAL"
    assert validate(entry, protocols={"dubbo", "meshrpc"}) == []
    host = service("x.Y", Instance("db.example.com", 1, "dubbo"), external="true")
    entry = m.entry(m.place(host), [(opts(), host)])
    assert entry["spec"]["resolution"] == "DNS" and entry["spec"]["location"] == "MESH_EXTERNAL"
    assert m.entry(m.place(host), [(opts(location="MESH_INTERNAL"), host)])["spec"]["location"] == "MESH_INTERNAL"


def test_alias_names_are_validated():
    m = mapper()
    long = service("a" * 40 + "." + "b" * 30)
    with pytest.raises(Refused, match="DNS-1035"):
        m.alias(m.entry(m.place(long), [(opts(), long)]))
    digit = service("9lives.Svc")
    with pytest.raises(Refused, match="DNS-1035"):
        m.alias(m.entry(m.place(digit), [(opts(), digit)]))


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("arg, message", [
    ("127.0.0.1:2181", "expected SCHEME://"),
    ("zookeeper://h:1#colour=red", "unknown option 'colour'"),
    ("zookeeper://h:1#name=Zk_1", "name 'Zk_1' is not a DNS-1123 label"),
    ("zookeeper://h:1#location=outside", "location must be internal or external"),
    ("zookeeper://h:1#host={nme}", "host template"),
    ("zookeeper://h:1#as=my-proto", "contains '-'"),
    ("zookeeper://h:1#alias=yes", "alias must be true or false"),
])
def test_bad_source_options_name_the_source(arg, message):
    with pytest.raises(UserError, match=message) as info:
        parse_source(arg, "default")
    assert arg.split("#")[0] in str(info.value)


def test_source_options_and_duplicate_names():
    o = parse_source("zookeeper://h:2181/dubbo#name=zk1&as=dubbo&namespace=prod&location=external&alias=true", "d")
    assert o == SourceOptions(url="zookeeper://h:2181/dubbo", name="zk1", namespace="prod", protocol="dubbo",
                              location="MESH_EXTERNAL", host=None, alias=True)
    with pytest.raises(UserError, match="also used by"):
        parse_sources(["file:///a", "file:///b"], "default")
    with pytest.raises(UserError, match="unknown registry scheme 'redis'"):
        open_source("redis://h:1")


def test_protocols_from_specs_and_builtins():
    assert load_protocols([str(ROOT / "protocols" / "awesomerpc.py"), "dubbo"]) == {
        "awesomerpc": str(ROOT / "protocols" / "awesomerpc.py"), "dubbo": "dubbo"}
    with pytest.raises(UserError, match="--protocol nope.py: no such spec file"):
        load_protocols(["nope.py"])


# --------------------------------------------------------------------------- the file source


def test_file_source_reads_and_names_bad_entries(tmp_path):
    reg = tmp_path / "reg.yaml"
    reg.write_text("- name: a.B\n  attributes: {group: g, version: 1}\n  instances:\n"
                   "  - {address: 10.0.0.1, port: 20880, protocol: dubbo, labels: {zone: 1}}\n")
    src = FileSource(f"file://{reg}")
    snap = src.list()
    assert list(snap) == ["a.B:g:1"] and src.healthy()
    assert snap["a.B:g:1"].instances[0] == Instance("10.0.0.1", 20880, "dubbo", labels={"zone": "1"})
    for text, message in [
        ("- name: a\n  instances:\n  - {address: x, port: 70000}\n", "[0].instances[0].port: 70000 is not a port"),
        ("- name: a\n  instances:\n  - {address: x, port: '1'}\n", "[0].instances[0].port: expected int"),
        ("- {name: a}\n- {name: a}\n", "[1].key: 'a' already used"),
        ("- {name: a, colour: red}\n", "[0].colour: unknown field"),
        ("{}\n", "expected a YAML list"),
        ("- [", "not valid YAML"),
    ]:
        reg.write_text(text)
        with pytest.raises(SourceError) as info:
            src.list()
        assert str(reg) in str(info.value) and message in str(info.value), str(info.value)
        assert not src.healthy()
    reg.unlink()
    with pytest.raises(SourceError, match="No such file"):
        src.list()
    with pytest.raises(UserError, match="expected file:///PATH"):
        FileSource("file://")


def test_file_source_watch_notices_a_change(tmp_path):
    reg = tmp_path / "reg.yaml"
    reg.write_text("[]\n")
    src = FileSource(f"file://{reg}?interval=0.02")
    seen = []
    src.watch(seen.append)
    try:
        time.sleep(0.1)
        assert seen == []
        reg.write_text("- {name: a}\n")
        end = time.monotonic() + 5
        while not seen and time.monotonic() < end:
            time.sleep(0.02)
        assert seen == [set()]
    finally:
        src.close()


# --------------------------------------------------------------------------- bridge once: golden


def once_args(case: Path, out: Path) -> list[str]:
    options = (case / "options").read_text().strip()
    args = ["bridge", "once", "--source", f"file://{case / 'registry.yaml'}{options}", "-o", str(out)]
    for p in (case / "protocols").read_text().split():
        args += ["--protocol", str((case / p).resolve()) if "/" in p else p]
    return args


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
def test_once_golden(case, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(once_args(GOLDEN / case, out)) == 0
    got = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.yaml"))}
    expected_dir = GOLDEN / case / "expected"
    if os.environ.get("CODECGEN_UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(out, expected_dir)
    expected = {str(p.relative_to(expected_dir)): p.read_text() for p in sorted(expected_dir.rglob("*.yaml"))}
    assert got == expected
    for text in got.values():
        doc = yaml.safe_load(text)
        assert validate(doc, protocols={"dubbo", "meshrpc"}) == []
    if case == "dubbo":  # the service with an unknown protocol is reported, not guessed
        assert "org.apache.dubbo.samples.Unknown" in capsys.readouterr().err


def test_once_refuses_a_broken_registry_in_one_line_and_writes_nothing(tmp_path, capsys):
    reg = tmp_path / "reg.yaml"
    reg.write_text("- name: a\n  instances:\n  - {address: 10.0.0.1}\n")
    out = tmp_path / "out"
    code = main(["bridge", "once", "--source", f"file://{reg}", "--protocol", "dubbo", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert err[-1] == f"codecgen: error: source file: {reg}: [0].instances[0].port: required"


@pytest.mark.parametrize("argv, message", [
    (["bridge", "once", "--protocol", "dubbo", "-o", "x"], "--source"),
    (["bridge", "once", "--source", "nowhere", "--protocol", "dubbo", "-o", "x"], "--source nowhere: expected SCHEME"),
    (["bridge", "once", "--source", "file:///r.yaml", "--protocol", "missing.py", "-o", "x"],
     "--protocol missing.py: no such spec file"),
    (["bridge", "run", "--source", "file:///r.yaml", "--protocol", "dubbo", "--grace", "-1"], "--grace"),
    (["bridge", "run", "--source", "file:///r.yaml", "--protocol", "dubbo", "--kubeconfig", "/nope"],
     "--kubeconfig /nope"),
    (["bridge", "fly"], "invalid choice"),
])
def test_cli_errors_are_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


# --------------------------------------------------------------------------- manifests


def test_manifests_least_privilege(tmp_path):
    out = tmp_path / "m"
    spec = ROOT / "protocols" / "meshrpc.py"
    assert main(["bridge", "manifests", "--image", "reg.example/codecgen:1", "--source",
                 "zookeeper://zk.infra:2181/dubbo#namespace=apps&alias=true", "--source",
                 "consul://consul.infra:8500#namespace=web", "--protocol", str(spec), "--protocol", "dubbo",
                 "-o", str(out)]) == 0
    docs = {p.name: list(yaml.safe_load_all(p.read_text())) for p in out.iterdir()}
    assert sorted(docs) == ["00-namespace.yaml", "10-serviceaccount.yaml", "20-rbac-apps.yaml",
                            "20-rbac-codecgen-bridge.yaml", "20-rbac-web.yaml", "30-configmap.yaml",
                            "40-deployment.yaml"]  # apply order
    kinds = [d["kind"] for ds in docs.values() for d in ds]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    rules = {name: docs[name][0]["rules"] for name in docs if name.startswith("20-rbac-")}
    assert [r["resources"] for r in rules["20-rbac-apps.yaml"]] == [["serviceentries"], ["services"]]
    assert [r["resources"] for r in rules["20-rbac-web.yaml"]] == [["serviceentries"]]
    assert rules["20-rbac-codecgen-bridge.yaml"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                                   "verbs": ["get", "create", "update"]}]
    for r in rules["20-rbac-apps.yaml"]:
        assert r["verbs"] == ["get", "list", "create", "patch", "delete"]
    deploy = docs["40-deployment.yaml"][0]
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg.example/codecgen:1" and deploy["spec"]["replicas"] == 2
    args = container["args"]
    assert args[:2] == ["bridge", "run"] and "/etc/codecgen/protocols/meshrpc.py" in args and "dubbo" in args
    assert args[args.index("--lease-namespace") + 1] == "codecgen-bridge"
    assert docs["30-configmap.yaml"][0]["data"]["meshrpc.py"] == spec.read_text()
    for doc in docs["20-rbac-apps.yaml"]:
        assert doc["metadata"]["namespace"] == "apps"
