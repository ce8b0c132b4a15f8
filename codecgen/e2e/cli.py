"""``codecgen e2e``: the kind + Istio + Aeraki suite (see ``codecgen/e2e/__init__.py``).

    e2e preflight --image IMG [--target T]          what the run needs, one line per missing thing
    e2e manifests SPEC --image IMG [-o DIR]         the Kubernetes manifests only
    e2e context SPEC... [-o DIR] [--target T]       the sample app image's build context only
    e2e run SPEC --image IMG [--target T] [--keep]  preflight, sample image, cluster, checks
    e2e run ... --bridge                            also: ZooKeeper, providers, codecgen bridge, checks
                                                    through the ServiceEntry the bridge writes
    e2e down                                        delete the kind cluster

Exit codes: 0 ok, 1 a check or a cluster step failed, 2 usage or preflight.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codecgen.ir import CODEC_ID_KEY as MARK_KEY


EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _pins(target):
    from codecgen.pins import get_e2e, get_target

    return get_target(target), get_e2e(target)


def _print_preflight(problems, notes) -> None:
    for note in notes:
        print(f"e2e preflight: note: {note}")
    for problem in problems:
        print(f"e2e preflight: {problem}", file=sys.stderr)


def preflight_main(args) -> int:
    from codecgen.e2e.preflight import preflight

    target, pins = _pins(args.target)
    problems, notes = preflight(target, pins, args.image, args.docker_host)
    _print_preflight(problems, notes)
    if problems:
        print(f"e2e preflight: {len(problems)} problem(s): the run cannot start", file=sys.stderr)
        return EXIT_USAGE
    print(f"e2e preflight: OK (target {target.name}: Istio {target.istio_version}, Aeraki {pins.aeraki_tag})")
    return EXIT_OK


def _files(plan, args) -> tuple[dict, dict]:
    """(the base run's manifests, the bridge scenario's: empty without --bridge)."""
    from codecgen.e2e import bridge, manifests

    extra = bridge.manifests(plan, _pins(args.target)[1]) if args.bridge else {}
    return manifests(plan), extra


def manifests_main(args) -> int:
    from codecgen.e2e import make_plan
    from codecgen.output import write_tree

    plan = make_plan(args.spec, args.image, args.sample_image, args.key, args.values,
                     getattr(args, "target", None))
    base, extra = _files(plan, args)
    out = Path(args.output or f"out/e2e/{plan.proto.name}/manifests")
    for path in write_tree(out, {**base, **extra}):
        print(path)
    return EXIT_OK


def context_main(args) -> int:
    from codecgen.e2e.sample_image import write_context

    _, pins = _pins(args.target)
    for path in write_context(Path(args.output), pins, args.spec):
        print(path)
    return EXIT_OK


def run_main(args) -> int:
    from codecgen.e2e import CLUSTER, bridge, make_plan
    from codecgen.e2e import sample_image
    from codecgen.e2e.cluster import Cluster
    from codecgen.e2e.preflight import preflight
    from codecgen.e2e.tools import StepFailed, Tools
    from codecgen.output import write_tree

    target, pins = _pins(args.target)
    plan = make_plan(args.spec, args.image, args.sample_image, args.key, args.values,
                     getattr(args, "target", None))
    problems, notes = preflight(target, pins, args.image, args.docker_host)
    _print_preflight(problems, notes)
    if problems:
        return EXIT_USAGE
    work = Path(args.work_dir or f"out/e2e/{plan.proto.name}")
    files, bridge_files = _files(plan, args)
    write_tree(work / "manifests", {**files, **bridge_files})
    print(f"e2e: manifests in {work / 'manifests'}")
    log = lambda line: print(line, flush=True)  # noqa: E731
    if args.no_sample_build:
        sample_image.check_present(plan.sample_image, args.docker_host)
        print(f"e2e: using the sample image {plan.sample_image} as it is")
    else:
        sample_image.write_context(work / "sample-context", pins, [args.spec])
        print(f"e2e: building the sample image {plan.sample_image}")
        sample_image.build(work / "sample-context", plan.sample_image, args.docker_host, progress=sys.stdout)
    cluster = Cluster(Tools(log=log), target, pins, work, name=args.cluster)
    failed = False
    try:
        cluster.create()
        cluster.load_images([plan.proxy_image, plan.sample_image])
        cluster.install_istio()
        cluster.install_aeraki()
        cluster.deploy(plan, files)
        print(cluster.probe(plan), end="")
        print(f"e2e: {plan.proto.name}: every check passed in the mesh (cluster {cluster.name}); the "
              f"MetaRouter's routes match {MARK_KEY}={plan.proto.codec_name}, which only codecgen's "
              f"codec publishes: the sidecars ran it")
        if args.bridge:
            host = bridge.entry_host(plan)
            cluster.deploy_bridge(plan, bridge_files)
            cluster.wait_for_entry(plan, host)
            print(cluster.probe(plan, host), end="")
            print(f"e2e: {plan.proto.name}: every check passed through {host}, the ServiceEntry codecgen "
                  f"bridge wrote from ZooKeeper")
    except StepFailed as exc:
        failed = True
        print(f"codecgen e2e: {exc}", file=sys.stderr)
        try:
            print(cluster.diagnostics(plan, with_bridge=args.bridge), file=sys.stderr)
        except StepFailed:
            pass
    finally:
        if args.keep:
            print(f"e2e: keeping cluster {cluster.name} (codecgen e2e down{'' if args.cluster == CLUSTER else ' --cluster ' + args.cluster} deletes it)")
        else:
            try:
                cluster.delete()
            except StepFailed as exc:
                print(f"codecgen e2e: {exc}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def down_main(args) -> int:
    from codecgen.e2e.tools import Tools

    Tools().run(["kind", "delete", "cluster", "--name", args.cluster], timeout=300)
    return EXIT_OK


def add_parser(subparsers) -> argparse.ArgumentParser:
    from codecgen.e2e import CLUSTER

    e2e = subparsers.add_parser("e2e", help="end-to-end in a kind cluster with Istio and Aeraki",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = e2e.add_subparsers(dest="e2e_command", metavar="COMMAND")
    sub.required = True

    def target(p):
        p.add_argument("--target", default=None, help="build target in codecgen/targets.yaml "
                                                       "(default: its default)")

    def docker(p):
        p.add_argument("--docker-host", default=None, help="docker engine URL (default DOCKER_HOST or "
                                                           "the local socket)")

    def plan(p):
        p.add_argument("spec", metavar="SPEC")
        p.add_argument("--image", required=True, help="the MetaProtocol proxy image (codecgen image build)")
        p.add_argument("--sample-image", default=None,
                       help="tag of the sample app image (default codecgen-e2e/sample-<name>:latest)")
        p.add_argument("--key", default=None, help="routing key the checks route on (default: the spec's first)")
        p.add_argument("--values", nargs=2, default=None, metavar=("V1", "V2"),
                       help="values routed to v1 and v2 (default 1 2)")

    def bridge(p):
        p.add_argument("--bridge", action="store_true",
                       help="the bridge scenario too: ZooKeeper, self-registering providers, codecgen bridge, "
                            "and the checks through the ServiceEntry it writes")

    p = sub.add_parser("preflight", help="what the run needs, one line per missing thing (exit 2)")
    p.add_argument("--image", required=True, help="the MetaProtocol proxy image the run will use")
    target(p)
    docker(p)
    p.set_defaults(func=preflight_main)

    p = sub.add_parser("manifests", help="write the Kubernetes manifests only")
    plan(p)
    target(p)
    bridge(p)
    p.add_argument("-o", "--output", default=None, help="folder (default out/e2e/<name>/manifests)")
    p.set_defaults(func=manifests_main)

    p = sub.add_parser("context", help="write the sample app image's build context only")
    p.add_argument("spec", nargs="+", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, help="context folder")
    target(p)
    p.set_defaults(func=context_main)

    p = sub.add_parser("run", help="preflight, sample image, kind + Istio + Aeraki, deploy, check")
    plan(p)
    target(p)
    bridge(p)
    docker(p)
    p.add_argument("--cluster", default=CLUSTER, help=f"kind cluster name (default {CLUSTER}; reused if it exists)")
    p.add_argument("--keep", action="store_true", help="leave the cluster running")
    p.add_argument("--no-sample-build", action="store_true",
                   help="use --sample-image as it is in the docker engine (built by an earlier run or a CI step)")
    p.add_argument("--work-dir", default=None, help="where manifests and the context go (default out/e2e/<name>)")
    p.set_defaults(func=run_main)

    p = sub.add_parser("down", help="delete the kind cluster")
    p.add_argument("--cluster", default=CLUSTER)
    p.set_defaults(func=down_main)
    return e2e
