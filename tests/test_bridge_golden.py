"""Golden tests in the slime style: a registry tree in (tests/fixtures/bridge/*.yaml), the Services
a source reports out. ZooKeeper and etcd are the real servers (tests/registries.py); Consul, Nacos
and Polaris are the HTTP fakes of their documented APIs (tests/registry_fakes.py)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

import registries
import registry_fakes
from registries import etcd, zookeeper  # noqa: F401 - pytest fixtures
from codecgen.bridge.sources import open_source

FIXTURES = Path(__file__).parent / "fixtures" / "bridge"


def load(name: str) -> dict:
    return yaml.safe_load((FIXTURES / name).read_text())


def plain(snapshot) -> dict:
    """A snapshot as the fixtures spell it (defaults left out)."""
    out = {}
    for key, service in snapshot.items():
        entry = {"name": service.name}
        if service.namespace is not None:
            entry["namespace"] = service.namespace
        if service.attributes:
            entry["attributes"] = dict(service.attributes)
        instances = []
        for inst in service.instances:
            item = {"address": inst.address, "port": inst.port}
            for field in ("protocol", "weight", "locality"):
                if getattr(inst, field) is not None:
                    item[field] = getattr(inst, field)
            if not inst.healthy:
                item["healthy"] = False
            if inst.labels:
                item["labels"] = dict(inst.labels)
            instances.append(item)
        entry["instances"] = instances
        out[key] = entry
    return out


def normalised(expected: dict) -> dict:
    """Fixture YAML -> the shape of plain() (labels are strings; absent lists are empty)."""
    out = {}
    for key, entry in expected.items():
        entry = dict(entry)
        entry["instances"] = [dict(i, labels={k: str(v) for k, v in i["labels"].items()})
                              if "labels" in i else dict(i) for i in entry.get("instances") or []]
        if "attributes" in entry:
            entry["attributes"] = {k: str(v) for k, v in entry["attributes"].items()}
        out[key] = entry
    return out


def after(case: dict) -> dict:
    result = dict(case["expected"])
    for key, entry in case["then"]["expected"].items():
        if entry is None:
            result.pop(key, None)
        else:
            result[key] = entry
    return result


def check(source, expected: dict) -> None:
    assert plain(source.list()) == normalised(expected)


def test_zookeeper_golden(zookeeper):
    case = load("zookeeper-dubbo.yaml")
    providers = registries.DubboProviders(zookeeper.hosts)
    client = providers.client
    client.delete("/dubbo", recursive=True) if client.exists("/dubbo") else None
    for directory, children in case["registry"].items():
        client.ensure_path(directory)
        for child in children:
            if isinstance(child, dict):
                client.create(f"{directory}/{child['raw']}", ephemeral=True)
            else:
                client.create(f"{directory}/{quote(child, safe='')}", child.encode(), ephemeral=True)
    source = open_source(case["source"].format(address=zookeeper.hosts))
    try:
        check(source, case["expected"])
        for url in case["then"]["remove"]:
            providers.unregister(url)
        check(source, after(case))
    finally:
        source.close()
        providers.close()


@pytest.mark.parametrize("name", ["etcd-dubbo.yaml", "etcd-json.yaml"])
def test_etcd_golden(etcd, name):
    case = load(name)
    etcd.delete_prefix("/")
    written = {}
    for item in case["registry"]:
        if "provider" in item:
            url = item["provider"]
            interface = url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
            key = f"/dubbo/{interface}/providers/{quote(url, safe='')}"
            written[url] = key
            etcd.put(key, url)
        else:
            etcd.put(item["key"], item["value"])
    source = open_source(case["source"].format(address=f"127.0.0.1:{etcd.port}"))
    try:
        check(source, case["expected"])
        for item in case["then"]["remove"]:
            etcd.delete(written.get(item, item))
        check(source, after(case))
    finally:
        source.close()


def test_consul_golden():
    case = load("consul.yaml")
    fake = registry_fakes.FakeConsul().start()
    for service, entries in case["registry"].items():
        for e in entries:
            fake.register(service, e["id"], e["address"], e["port"], tags=e.get("tags", ()),
                          meta=e.get("meta"), weights=e.get("weights"),
                          status=e.get("status", "passing"),
                          node_address=e.get("node_address", "192.0.2.1"))
    source = open_source(case["source"].format(address=f"127.0.0.1:{fake.port}"))
    try:
        check(source, case["expected"])
    finally:
        source.close()
        fake.stop()


def test_nacos_golden():
    case = load("nacos.yaml")
    fake = registry_fakes.FakeNacos().start()
    for namespace, groups in case["registry"].items():
        for group, services in groups.items():
            for service, hosts in services.items():
                fake.add_service(service, group, namespace)
                for h in hosts:
                    fake.add_instance(service, h["ip"], h["port"], group, namespace,
                                      weight=h.get("weight", 1.0), healthy=h.get("healthy", True),
                                      enabled=h.get("enabled", True), metadata=h.get("metadata"))
    source = open_source(case["source"].format(address=f"127.0.0.1:{fake.port}"))
    try:
        check(source, case["expected"])
    finally:
        source.close()
        fake.stop()


def test_polaris_golden():
    case = load("polaris.yaml")
    fake = registry_fakes.FakePolaris().start()
    for namespace, services in case["registry"].items():
        for service, items in services.items():
            if isinstance(items, dict):
                fake.add_service(service, namespace, items["metadata"])
                items = items["instances"]
            fake.add_service(service, namespace)
            for i in items:
                fake.add_instance(service, i["host"], i["port"], namespace,
                                  **{k: v for k, v in i.items() if k not in ("host", "port")})
    source = open_source(case["source"].format(address=f"127.0.0.1:{fake.port}"))
    try:
        check(source, case["expected"])
    finally:
        source.close()
        fake.stop()


def test_golden_fixtures_are_all_used():
    used = {"zookeeper-dubbo.yaml", "etcd-dubbo.yaml", "etcd-json.yaml", "consul.yaml",
            "nacos.yaml", "polaris.yaml"}
    assert {p.name for p in FIXTURES.glob("*.yaml")} == used
    json.dumps([load(name) for name in used])   # plain data only
