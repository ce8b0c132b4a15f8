"""``codecgen serve`` and ``codecgen call``."""

from __future__ import annotations

import json
import signal
import sys
import threading

from codecgen.errors import UserError


def _keys(pairs) -> dict[str, str]:
    keys = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--key wants K=V, got {pair!r}")
        keys[key] = value
    return keys


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--to wants HOST:PORT, got {text!r}")
    return host, int(port)


def _drivable(spec: str):
    """The spec's Sample, refused in one line when serve/call cannot drive it (as `check` does)."""
    from codecgen.sample import Sample, drive_problem

    sample = Sample.load(spec)
    problem = drive_problem(sample)
    if problem:
        raise UserError(problem)
    return sample


def serve_main(args) -> int:
    from codecgen.sample import SampleServer

    sample = _drivable(args.spec)
    try:
        server = SampleServer(sample, args.port, args.name, host=args.host,
                              log=lambda line: print(line, flush=True))
    except OSError as exc:
        raise UserError(f"--port {args.port}: {exc.strerror or exc}") from None
    print(f"{args.name}: serving {sample.proto.name} on {args.host}:{server.port}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    try:
        while not done.wait(0.2):
            if args.count and server.requests >= args.count:
                break
    finally:
        server.stop()
    return 0


def call_main(args) -> int:
    from codecgen.sample import call

    if args.count < 1:
        raise UserError("--count must be at least 1")
    sample = _drivable(args.spec)
    host, port = _hostport(args.to)
    for response in call(sample, host, port, _keys(args.key), count=args.count, timeout=args.timeout):
        print(json.dumps(response, sort_keys=False))
    return 0


def probe_main(args) -> int:
    from codecgen.sample import CheckFailed, probe_plan, proxy_checks

    sample = _drivable(args.spec)
    host, port = _hostport(args.to)
    plan = probe_plan(sample.proto, args.key, args.values)
    mutation = _keys(args.mutation) if args.mutation else plan.mutation
    try:
        proxy_checks(sample, port, plan.key, plan.values, mutation,
                     report=lambda line: print(f"probe: {line}", flush=True), host=host,
                     unrouted=plan.unrouted)
    except CheckFailed as exc:
        print(f"codecgen probe: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"probe: {sample.proto.name} through {host}:{port}: all checks passed", flush=True)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="a sample server answering every request with who answered and the keys it got")
    p.add_argument("spec")
    p.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    p.add_argument("--name", default="v1", help="the name the server puts in its answers")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--count", type=int, default=0, help="stop after this many requests (default: never)")
    p.set_defaults(func=serve_main)

    p = sub.add_parser("call", help="send requests with chosen routing keys and print the responses")
    p.add_argument("spec")
    p.add_argument("--to", required=True, help="HOST:PORT of a server or a proxy")
    p.add_argument("--key", action="append", metavar="K=V", help="a routing key or header (repeatable)")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=call_main)

    p = sub.add_parser("probe", help="check a deployed proxy: routing by key, request mutation, "
                                     "error reply, heartbeat (exit 1 when a check fails)",
                       description="Check a deployed proxy: routing by key, request mutation, error reply, "
                                   "heartbeat (exit 1 when a check fails). The routing proves which codec "
                                   "the proxy runs when its routes also match x-codecgen-codec=<codec name> "
                                   "(codecgen's mark, published only by the generated codec), as the e2e "
                                   "MetaRouter and image verify's routes do; through routes without it, a "
                                   "pass proves the routing, not the codec.")
    p.add_argument("spec")
    p.add_argument("--to", required=True, help="HOST:PORT of the proxy (or the mesh service)")
    p.add_argument("--key", default=None, help="routing key (default: the spec's first)")
    p.add_argument("--values", nargs=2, default=None, metavar=("V1", "V2"),
                   help="values the proxy routes to the servers named v1 and v2 (default 1 2)")
    p.add_argument("--mutation", action="append", metavar="K=V",
                   help="request mutation expected at v1 (default x-codecgen-route=v1)")
    p.set_defaults(func=probe_main)
