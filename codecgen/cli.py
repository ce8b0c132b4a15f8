"""The ``codecgen`` command line.

Every subcommand turns bad input (a spec, a file, a flag) into one line on
stderr naming the culprit and exit code 2; a protocol error found in data is
exit code 1; success is 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Callable, Optional

from codecgen.errors import UserError
from codecgen.version import __version__

# The core commands (name -> (function, help, argument builder)); every other part contributes its
# commands through its own ``add_parser(sub)`` (see SUBSYSTEMS), and so does this module.
COMMANDS: dict[str, tuple[Callable, str, Callable]] = {}


class _Parser(argparse.ArgumentParser):
    """argparse that reports flag errors as one line, exit 2."""

    def error(self, message):  # noqa: D102
        raise UserError(f"{self.prog}: {message}")


def command(name: str, help: str, arguments: Callable = lambda p: None):
    def wrap(fn):
        COMMANDS[name] = (fn, help, arguments)
        return fn

    return wrap


def _load(spec: str, target: Optional[str] = None):
    from codecgen.frontend import load

    return load(spec, target=target)


def _read_input(path: Optional[str]) -> bytes:
    if path in (None, "-"):
        return sys.stdin.buffer.read()
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such file")
    return file.read_bytes()


# ----------------------------------------------------------------------------- new


def _new_args(p):
    p.add_argument("name", help="protocol token, [a-z][a-z0-9]*")
    p.add_argument("-o", "--output", help="file to write (default: ./<name>.py)")


@command("new", "write a commented spec scaffold that passes check and generate", _new_args)
def cmd_new(args) -> int:
    from codecgen import naming
    from codecgen.scaffold import scaffold

    problem = naming.check_token(args.name)
    if problem:
        raise UserError(f"NAME: {problem}")
    from codecgen.builtins import collision
    from codecgen.pins import get_target

    target = get_target()
    if collision(args.name, target):
        raise UserError(f"NAME: {args.name!r} is a built-in codec of meta-protocol-proxy {target.proxy_tag} "
                        f"(built-ins: {', '.join(target.builtin_codecs)}); choose another name (a spec that replaces "
                        f"the built-in declares replaces_builtin=True: see protocols/README.md)")
    out = Path(args.output or f"{args.name}.py")
    if out.exists():
        raise UserError(f"-o {out}: already exists; refusing to overwrite")
    from codecgen.output import write_tree

    write_tree(out.parent if str(out.parent) else ".", {out.name: scaffold(args.name)})
    print(f"wrote {out}: try `codecgen check {out}`")
    return 0


# ----------------------------------------------------------------------------- check


def _spec_arg(p):
    p.add_argument("spec", help="the protocol spec (a Python file defining PROTOCOL)")


def _target_arg(p):
    p.add_argument("--target", default=None, help="meta-protocol-proxy target whose built-in codecs the "
                   "spec must not collide with (a target of the build pins, targets.yaml; default: its default)")


def _check_args(p):
    _spec_arg(p)
    _target_arg(p)


@command("check", "validate a spec and print its IR summary", _check_args)
def cmd_check(args) -> int:
    from codecgen.sample import Sample, drive_problem
    from codecgen.summary import summarize

    proto = _load(args.spec, args.target)
    problem = drive_problem(Sample.load(args.spec, target=args.target))  # serve/call/probe must be able to drive it
    if problem:
        raise UserError(problem)
    print(summarize(proto))
    return 0


# ----------------------------------------------------------------------------- generate


def _generate_args(p):
    _spec_arg(p)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--target", default=None, help="meta-protocol-proxy target (see codecgen/targets.yaml)")
    p.add_argument("--namespace", default="default", help="namespace for the Kubernetes examples")


@command("generate", "write the C++ codec, the Python reference codec, Kubernetes resources and a Wireshark dissector",
         _generate_args)
def cmd_generate(args) -> int:
    from codecgen.output import replace_tree
    from codecgen.pipeline import generate_files

    proto = _load(args.spec, args.target)
    files = generate_files(proto, target=args.target, namespace=args.namespace)
    written = replace_tree(args.output, files)
    for path in written:
        print(path)
    return 0


# ----------------------------------------------------------------------------- dissector / pcap


def _dissector_args(p):
    _spec_arg(p)
    p.add_argument("-o", "--output", required=True, help="output folder (gets <name>.lua)")


@command("dissector", "write a Wireshark Lua dissector (<name>.lua) for the spec", _dissector_args)
def cmd_dissector(args) -> int:
    from codecgen.backends import wireshark
    from codecgen.output import write_tree

    proto = _load(args.spec)
    for path in write_tree(args.output, {wireshark.file_name(proto): wireshark.render(proto)}):
        print(path)
    return 0


def _pcap_args(p):
    _spec_arg(p)
    p.add_argument("-o", "--output", required=True, help="the capture file to write (.pcap)")
    p.add_argument("--count", type=int, default=12, help="request/reply exchanges per connection (default 12)")
    p.add_argument("--conversations", type=int, default=2, help="TCP connections (default 2)")
    p.add_argument("--port", type=int, default=None, help="server port (default: the Kubernetes examples' port)")
    p.add_argument("--seed", type=int, default=1, help="seed of the segment split points")


@command("pcap", "write sample conversations (requests, responses, heartbeats, error replies) as a pcap",
         _pcap_args)
def cmd_pcap(args) -> int:
    from codecgen.sample.pcap import write

    if args.port is not None and not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a TCP port (1..65535)")
    print(write(args.spec, args.output, count=args.count, conversations=args.conversations,
                seed=args.seed, port=args.port))
    return 0


# ----------------------------------------------------------------------------- decode


def _decode_args(p):
    _spec_arg(p)
    p.add_argument("input", nargs="?", default="-", help="raw bytes of one direction (file or - for stdin)")
    p.add_argument("--direction", choices=("request", "response"), default="request")
    p.add_argument("--engine", choices=("python", "cpp"), default="python")
    p.add_argument("--codec-dir", help="with --engine cpp: a (hand-edited) codec folder to compile")


@command("decode", "decode a byte stream into one JSON line per frame", _decode_args)
def cmd_decode(args) -> int:
    from codecgen.engines import decode_stream

    proto = _load(args.spec)
    data = _read_input(args.input)
    result = decode_stream(proto, data, args.direction, engine=args.engine, codec_dir=args.codec_dir)
    for frame in result.frames:
        print(json.dumps(frame, sort_keys=False))
    if result.error is not None:
        print(json.dumps({"error": result.error}))
        return 1
    if result.held:
        print(json.dumps({"incomplete": result.held}))
    return 0


# ----------------------------------------------------------------------------- encode


def _encode_args(p):
    _spec_arg(p)
    p.add_argument("input", nargs="?", default="-", help="JSON objects, one per line (file or -)")
    p.add_argument("-o", "--output", default="-", help="where to write the frames (default stdout)")
    p.add_argument("--direction", choices=("request", "response"), default="request",
                   help="build requests or responses (for layouts that differ, see DIRECTION)")


@command("encode", "build frames from JSON field values (one object per line)", _encode_args)
def cmd_encode(args) -> int:
    from codecgen.engines import encode_values

    proto = _load(args.spec)
    text = _read_input(args.input).decode("utf-8", "replace")
    frames = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{args.input}:{number}" if args.input != "-" else f"<stdin>:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not JSON: {exc.msg}") from None
        frames.append(encode_values(proto, obj, where, direction=args.direction))
    data = b"".join(frames)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        from codecgen.output import write_tree

        out = Path(args.output)
        write_tree(out.parent, {out.name: data})
    return 0


# ----------------------------------------------------------------------------- bridge


def _bridge_args(p):
    from codecgen.bridge.cli import add_arguments

    add_arguments(p)


@command("bridge", "keep Istio ServiceEntries in sync with service registries (run, once, manifests)",
         _bridge_args)
def cmd_bridge(args) -> int:
    from codecgen.bridge.cli import main

    return main(args)


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="codecgen", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"codecgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (add_parser, *_subsystems()):
        add(sub)
    return parser


# Optional dependencies: the Python package -> the extra that installs it.
OPTIONAL = {"docker": "image"}


def _missing(exc: ModuleNotFoundError) -> str:
    package = (exc.name or "").split(".")[0]
    return (f"this command needs the Python package {package!r}: "
            f"pip install 'codecgen[{OPTIONAL[package]}]'")


def _unavailable(command: str, why: str):
    """A subcommand whose subsystem cannot load: it says why in one line (exit 2)."""
    def add(sub) -> None:
        p = sub.add_parser(command, help=f"(unavailable: {why})", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)

        def fail(_args):
            raise UserError(f"codecgen {command}: {why}")

        p.set_defaults(func=fail)
    return add


def add_parser(sub) -> None:
    """The core commands (new, check, generate, decode, encode)."""
    for name, (fn, help_text, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(func=fn)


# The parts that bring their own commands: module (with ``add_parser(sub)``), first command.
SUBSYSTEMS = (
    ("codecgen.verify.cli", "verify"),
    ("codecgen.image.cli", "image"),
    ("codecgen.sample.cli", "serve"),
    ("codecgen.fuzz.cli", "fuzz"),
    ("codecgen.replay.cli", "replay"),
    ("codecgen.e2e.cli", "e2e"),
)


def _subsystems():
    """Each subsystem's ``add_parser``, or a stand-in saying why it cannot load."""
    out = []
    for module, command in SUBSYSTEMS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in OPTIONAL:
                out.append(_unavailable(command, _missing(exc)))
                continue
            raise
        out.append(mod.add_parser)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return args.func(args)
    except UserError as exc:
        print(f"codecgen: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency, imported by the command itself
        if (exc.name or "").split(".")[0] not in OPTIONAL:
            raise
        print(f"codecgen: error: {_missing(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codecgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
