"""``codecgen bridge``: registries -> ServiceEntries (argument parsing only).

    bridge run --source URL... --protocol SPEC... [--namespace NS] [--kubeconfig F]
    bridge once --source URL... --protocol SPEC... -o DIR
    bridge manifests --image IMG --source URL... --protocol SPEC... [-o DIR]
    bridge register zookeeper://HOST:PORT[/root] --url PROVIDER_URL [--persistent]

Per-source options ride in the URL fragment: ``consul://127.0.0.1:8500#as=meshrpc&namespace=prod``
(see :mod:`codecgen.bridge.config`).
"""

from __future__ import annotations

import signal
import threading


def _common(p, need_sources: bool = True) -> None:
    p.add_argument("--source", action="append", default=[], required=need_sources, metavar="URL",
                   help="a registry: zookeeper:// etcd:// consul:// nacos:// polaris:// file:// "
                        "(options after '#': name, as, namespace, location, host, alias)")
    p.add_argument("--protocol", action="append", default=[], required=True, metavar="SPEC",
                   help="a codecgen spec (or the built-in dubbo/thrift) whose name services are tied to")
    p.add_argument("--namespace", default="default", help="namespace of the entries (default: default)")


def _positive(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="bridge_command", metavar="{run,once,manifests,register}", parser_class=type(p))
    sub.required = True
    run = sub.add_parser("run", help="keep ServiceEntries in sync with the registries")
    _common(run)
    run.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, else in-cluster")
    run.add_argument("--context", help="kubeconfig context (default: its current-context)")
    run.add_argument("--debounce", type=_positive, default=1.0, help="seconds of quiet before a change is applied")
    run.add_argument("--max-delay", type=_positive, default=10.0, help="apply a busy service at most this late")
    run.add_argument("--resync", type=_positive, default=300.0, help="full resync interval, seconds")
    run.add_argument("--grace", type=_positive, default=60.0,
                     help="seconds a drop to 0 instances or a disappearance must last before it is applied")
    run.add_argument("--lease-namespace", help="namespace of the leader Lease (default: --namespace)")
    run.add_argument("--no-leader-elect", action="store_true", help="a single replica: no Lease")
    run.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT of /healthz /readyz /metrics")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    once = sub.add_parser("once", help="one pass: write the ServiceEntries as YAML files (no cluster)")
    _common(once)
    once.add_argument("-o", "--output", required=True, help="output folder")
    man = sub.add_parser("manifests", help="Deployment, ServiceAccount and least-privilege RBAC for `bridge run`")
    _common(man)
    man.add_argument("--image", required=True, help="container image with codecgen installed")
    man.add_argument("--bridge-namespace", default="codecgen-bridge", help="where the bridge itself runs")
    man.add_argument("--replicas", type=int, default=2)
    man.add_argument("-o", "--output", help="output folder (default: print to stdout)")
    reg = sub.add_parser("register", help="register a provider in ZooKeeper as Dubbo does (demos, the e2e)")
    reg.add_argument("registry", metavar="REGISTRY", help="zookeeper://HOST:PORT[/root] (root default /dubbo)")
    reg.add_argument("--url", required=True, help="the provider URL, e.g. dubbo://10.0.0.7:20880/org.demo.Greeter?side=provider")
    reg.add_argument("--persistent", action="store_true",
                     help="a persistent node, then exit (default: ephemeral, held until SIGTERM)")


def _settings(args, **extra):
    from codecgen.bridge.config import load_protocols, parse_sources
    from codecgen.bridge.runner import Settings

    sources = parse_sources(args.source, args.namespace)
    return Settings(sources=sources, protocols=sorted(load_protocols(args.protocol)), **extra)


def _listen(text: str) -> tuple[str, int]:
    from codecgen.errors import UserError

    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise UserError(f"--listen {text}: expected HOST:PORT")
    return host or "0.0.0.0", int(port)


def main(args) -> int:
    from codecgen.bridge.observe import setup_logging
    from codecgen.output import write_tree

    setup_logging(getattr(args, "log_level", "warning"))

    if args.bridge_command == "once":
        from codecgen.bridge.runner import once

        for path in write_tree(args.output, once(_settings(args))):
            print(path)
        return 0
    if args.bridge_command == "register":
        from codecgen.bridge.register import register

        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        register(args.registry, args.url, persistent=args.persistent, stop=done,
                 log=lambda line: print(line, flush=True))
        return 0
    if args.bridge_command == "manifests":
        from codecgen.bridge.manifests import manifests

        files = manifests(_settings(args), args.source, args.protocol, args.namespace, image=args.image,
                          bridge_namespace=args.bridge_namespace, replicas=args.replicas)
        if args.output:
            for path in write_tree(args.output, files):
                print(path)
        else:
            print("\n---\n".join(files[name].strip() for name in sorted(files)))
        return 0
    from codecgen.bridge.kube import Kube, load_connection
    from codecgen.bridge.runner import Bridge

    settings = _settings(args, debounce=args.debounce, max_delay=args.max_delay, resync=args.resync,
                         grace=args.grace, listen=_listen(args.listen),
                         lease_namespace=None if args.no_leader_elect else (args.lease_namespace or args.namespace))
    kube = Kube(load_connection(args.kubeconfig, args.context))
    bridge = Bridge(settings, kube).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    bridge.stop()
    return 0
