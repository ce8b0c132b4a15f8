"""``codecgen image ...`` subcommands.

Wire into the top-level parser with one line::

    codecgen.image.cli.add_parser(subparsers)   # then: return args.func(args)

Subcommands (each also a plain function taking the argparse namespace and
returning an exit code: 0 ok, 1 build/verify failed, 2 usage or preflight):

    image context SPEC... [-o DIR] [--target T]     write the Docker build context only
    image build SPEC... --tag IMG [--target T]      context + preflight + docker build + tag
    image extract --image IMG [--path P] -o FILE    copy a file (default the envoy) out
    image verify --image IMG SPEC                   run the image's envoy with a static bootstrap

SPEC is a protocol spec file; its codec is generated as ``codecgen generate`` does.  ``--codec-dir NAME=DIR`` uses an already generated codec
folder instead.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from codecgen.errors import UserError
from codecgen.image import build as engine
from codecgen.image.bootstrap import BootstrapPorts, render_bootstrap
from codecgen.image.context import ENVOY_IN_IMAGE, render_dockerfile, write_context
from codecgen.ir import CODEC_ID_KEY
from codecgen.naming import codec_name
from codecgen.pins import get_target

__all__ = ["add_parser", "context_main", "build_main", "extract_main", "verify_main",
           "generate_codecs"]


def _traffic_check(spec: Path, listen: int, ports: tuple, key: str, values: tuple,
                   mutation: dict) -> None:
    """Serve v1/v2 on those 127.0.0.1 ports with the reference codec and send requests through
    the running proxy: routing, mutation, errors, heartbeat. Raises VerifyFailed."""
    from codecgen.sample import CheckFailed, Sample, SampleServer, probe_plan, proxy_checks

    sample = Sample.load(str(spec))
    plan = probe_plan(sample.proto, key, values)
    servers = [SampleServer(sample, port, name).start() for port, name in zip(ports, ("v1", "v2"))]
    try:
        proxy_checks(sample, listen, key, values, mutation, report=lambda line: print(f"verify: {line}"),
                     unrouted=plan.unrouted)
    except CheckFailed as exc:
        raise VerifyFailed(str(exc)) from None
    finally:
        for server in servers:
            server.stop()


BOOTSTRAP_IN_CONTAINER = "/tmp/codecgen-bootstrap.yaml"


class VerifyFailed(UserError):
    """The image ran but did not pass a check (exit code 1)."""


# --------------------------------------------------------------------------- helpers


def _generate_in_process(spec: Path, out_dir: Path, target: str) -> None:
    """What ``codecgen generate SPEC -o DIR --target T`` does, without a subprocess."""
    from codecgen.frontend import load
    from codecgen.output import write_tree
    from codecgen.pipeline import generate_files

    write_tree(out_dir, generate_files(load(str(spec), target=target), target=target))


def generate_codecs(specs: Sequence[str], codec_dirs: Sequence[str], work: Path,
                    target: str, replaces_builtin: Sequence[str] = ()) -> Tuple[Dict[str, Path], Set[str]]:
    """Protocol name -> codec folder, from spec files (generated) and NAME=DIR pairs, and the
    names whose codec replaces the built-in one: specs with ``replaces_builtin=True`` and the
    ``--replaces-builtin`` names given for ``--codec-dir`` folders."""
    from codecgen.frontend import load

    codecs: Dict[str, Path] = {}
    replaces = set(replaces_builtin)
    for pair in codec_dirs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise UserError(f"--codec-dir wants NAME=DIR, got {pair!r}")
        codecs[name] = Path(folder)
    for i, spec in enumerate(specs):
        proto = load(spec, target=target)  # refuses an undeclared built-in name, as check does
        if proto.replaces_builtin:
            replaces.add(proto.name)
        out = work / f"gen{i}"
        _generate_in_process(Path(spec), out, target)
        root = out / "src" / "application_protocols"
        found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not found:
            raise UserError(f"codecgen generate {spec} wrote no {root}/<name>/ folder")
        for folder in found:
            if folder.name in codecs:
                raise UserError(f"codec {folder.name} given twice")
            codecs[folder.name] = folder
    if not codecs:
        raise UserError("give at least one SPEC or --codec-dir NAME=DIR")
    return codecs, replaces


def _default_context_dir(target: str) -> Path:
    return Path("out") / "image" / target / "context"


def _common(p: argparse.ArgumentParser, specs: bool = True) -> None:
    if specs:
        p.add_argument("specs", nargs="*", metavar="SPEC", help="protocol spec file(s)")
        p.add_argument("--codec-dir", action="append", default=[], metavar="NAME=DIR",
                       help="an already generated codec folder (repeatable)")
        p.add_argument("--replaces-builtin", action="append", default=[], metavar="NAME",
                       help="the --codec-dir codec NAME replaces meta-protocol-proxy's built-in codec "
                            "of that name (a spec says so itself: replaces_builtin=True)")
    p.add_argument("--target", default=None,
                   help="build target from codecgen/targets.yaml (default: its default)")


def _docker_host(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docker-host", default=None,
                   help="engine URL (default $DOCKER_HOST or unix:///var/run/docker.sock)")


# --------------------------------------------------------------------------- context


def _write(args: argparse.Namespace, out: Path) -> List[Path]:
    target = get_target(args.target).name
    with tempfile.TemporaryDirectory(prefix="codecgen-gen-") as tmp:
        codecs, replaces = generate_codecs(args.specs, args.codec_dir, Path(tmp), target,
                                           args.replaces_builtin)
        return write_context(codecs, out, target, replaces)


def context_main(args: argparse.Namespace) -> int:
    try:
        target = get_target(args.target).name
        out = Path(args.output) if args.output else _default_context_dir(target)
        files = _write(args, out)
    except UserError as exc:
        return engine.fail(f"codecgen image context: {exc}")
    print(f"wrote {len(files)} files to {out} (target {target}); "
          f"build with: DOCKER_BUILDKIT=1 docker build -t IMAGE {out}")
    return engine.EXIT_OK


# --------------------------------------------------------------------------- build


def build_main(args: argparse.Namespace) -> int:
    try:
        t = get_target(args.target)
        out = Path(args.context_dir) if args.context_dir else _default_context_dir(t.name)
        # Preflight before any work: the FROM lines depend only on the target.
        engine.check_preflight(render_dockerfile(["preflight"], t), args.docker_host)
        _write(args, out)
        log = Path(args.log) if args.log else out.parent / "build.log"
        result = engine.build(out, tag=args.tag, base_url=args.docker_host, log_path=log,
                              progress=None if args.quiet else sys.stderr,
                              nocache=args.no_cache, network_mode=args.network,
                              run_preflight=False)
    except engine.PreflightError as exc:
        for line in exc.problems:
            sys.stderr.write(f"preflight: {line}\n")
        return engine.EXIT_USAGE
    except UserError as exc:
        return engine.fail(f"codecgen image build: {exc}")
    if not result.ok:
        return engine.EXIT_BUILD_FAILED
    print(result.tag or result.image_id)
    return engine.EXIT_OK


# --------------------------------------------------------------------------- extract


def extract_main(args: argparse.Namespace) -> int:
    try:
        dest = engine.extract_file(args.image, args.path, Path(args.output),
                                   base_url=args.docker_host)
    except UserError as exc:
        return engine.fail(f"codecgen image extract: {exc}")
    print(dest)
    return engine.EXIT_OK


# --------------------------------------------------------------------------- verify


def _free_ports(n: int) -> List[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _spec_protocol(spec: str):
    from codecgen.frontend import load_spec

    return load_spec(spec)


def _wait_ready(admin_port: int, cid: str, base_url: Optional[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{admin_port}/ready"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if not engine.container_running(cid, base_url):
            raise VerifyFailed("envoy exited:\n" + engine.container_logs(cid, base_url)[-4000:])
        if time.monotonic() > deadline:
            raise VerifyFailed(f"envoy not ready within {timeout:g}s:\n"
                            + engine.container_logs(cid, base_url)[-4000:])
        time.sleep(0.3)


def verify_main(args: argparse.Namespace) -> int:
    try:
        from codecgen.frontend import lower
        from codecgen.sample import probe_plan

        proto = _spec_protocol(args.spec)
        plan = probe_plan(lower(proto, spec_file=args.spec, target=args.target), args.key, args.values)
        key, values, mutation = plan.key, plan.values, plan.mutation
        listen, v1, v2, admin = _free_ports(4)
        ports = BootstrapPorts(listen=listen, v1=v1, v2=v2, admin=admin)
        bootstrap = render_bootstrap(proto.name, key, values, ports, mutation)
        cid = engine.start_container(
            args.image, ["-c", BOOTSTRAP_IN_CONTAINER, "--concurrency", "1", "-l", "info"],
            entrypoint=[ENVOY_IN_IMAGE], files={BOOTSTRAP_IN_CONTAINER: bootstrap.encode()},
            owner="verify", base_url=args.docker_host)
        try:
            _wait_ready(admin, cid, args.docker_host, args.timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/listeners?format=json",
                                        timeout=5) as resp:
                listeners = json.loads(resp.read().decode())
            names = [item.get("name") for item in listeners.get("listener_statuses", [])]
            if f"codecgen_{proto.name}" not in names:
                raise VerifyFailed(f"listener codecgen_{proto.name} missing (have {names})")
            print(f"verify: envoy in {args.image} runs codec "
                  f"{codec_name(proto.name)} on 127.0.0.1:{listen}")
            if args.no_traffic:
                print("verify: traffic checks skipped (--no-traffic)")
            else:
                _traffic_check(Path(args.spec), listen, (v1, v2), key, tuple(values), mutation)
                print(f"verify: routing by key and request_mutation OK; the routes match {CODEC_ID_KEY}="
                      f"{codec_name(proto.name)}, which only codecgen's codec publishes: the image runs it")
        finally:
            if not args.keep:
                engine.remove_container(cid, args.docker_host)
    except VerifyFailed as exc:
        engine.fail(f"codecgen image verify: {exc}")
        return engine.EXIT_BUILD_FAILED
    except UserError as exc:
        return engine.fail(f"codecgen image verify: {exc}")
    return engine.EXIT_OK


# --------------------------------------------------------------------------- parser


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``image`` and its subcommands; each leaf sets ``func``."""
    image = subparsers.add_parser("image", help="build and verify a MetaProtocol proxy image",
                                  description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = image.add_subparsers(dest="image_command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("context", help="write the Docker build context only")
    _common(p)
    p.add_argument("-o", "--output", default=None, help="context folder "
                   "(default out/image/<target>/context)")
    p.set_defaults(func=context_main)

    p = sub.add_parser("build", help="generate, preflight, docker build and tag")
    _common(p)
    _docker_host(p)
    p.add_argument("--tag", required=True, help="image name:tag to give the result")
    p.add_argument("--context-dir", default=None,
                   help="where the build context goes (default out/image/<target>/context)")
    p.add_argument("--log", default=None, help="full build log (default next to the context)")
    p.add_argument("--no-cache", action="store_true", help="ignore the layer cache")
    p.add_argument("--network", default=None, help="network mode of RUN steps (e.g. host)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live progress")
    p.set_defaults(func=build_main)

    p = sub.add_parser("extract", help="copy a file out of an image")
    _docker_host(p)
    p.add_argument("--image", required=True)
    p.add_argument("--path", default=ENVOY_IN_IMAGE, help=f"file in the image (default {ENVOY_IN_IMAGE})")
    p.add_argument("-o", "--output", required=True, help="destination file")
    p.set_defaults(func=extract_main)

    p = sub.add_parser("verify", help="run the image's envoy with the codec on 127.0.0.1")
    _docker_host(p)
    p.add_argument("--image", required=True)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--key", default=None, help="routing key (default: the spec's first)")
    p.add_argument("--values", nargs=2, default=None, metavar=("V1", "V2"),
                   help="key values routed to v1 and v2 (default 1 2)")
    p.add_argument("--target", default=None, help="build target the image was built for "
                   "(a target of the build pins, targets.yaml; default: its default)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for envoy")
    p.add_argument("--keep", action="store_true", help="leave the container running")
    p.add_argument("--no-traffic", action="store_true",
                   help="check only that envoy starts with the codec and its listener (an image "
                        "whose envoy cannot proxy here, e.g. a stand-in)")
    p.set_defaults(func=verify_main)
    return image
