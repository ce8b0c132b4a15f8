"""``codecgen verify``: the C++ codec against the reference codec, case by case."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from codecgen.errors import UserError

DEFAULT_CASES = 2000


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="compile the C++ codec with ASan+UBSan and compare it with the reference",
                       description="Compile the generated (or a hand-edited) C++ codec against the host "
                                   "model of the Envoy API with sanitizers, then run differential cases "
                                   "against the Python reference codec. Exit 0 only if they agree on all.")
    p.add_argument("spec", help="the protocol spec")
    p.add_argument("--codec-dir", help="a folder with <name>_codec.cc etc. (default: generate from the spec)")
    p.add_argument("--target", default=None, help="meta-protocol-proxy target (codecgen/targets.yaml)")
    p.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"number of cases (default {DEFAULT_CASES})")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--compiler", choices=("g++", "clang++"), default="g++")
    p.add_argument("--std", choices=("c++17", "c++20"), default="c++17")
    p.add_argument("--no-sanitize", action="store_true", help="build without ASan/UBSan (faster)")
    p.add_argument("--replay", help="replay one reproducer JSON file written by a failed run")
    p.add_argument("--out", default="codecgen-verify", help="where reproducers are written")
    p.set_defaults(func=verify_main)


def _progress_printer(total: int):
    tty = sys.stderr.isatty()
    state = {"last": 0.0, "n": 0}

    def show(report):
        state["n"] += 1
        now = time.monotonic()
        if state["n"] != total and now - state["last"] < (0.2 if tty else 5.0):
            return
        state["last"] = now
        kinds = " ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
        line = f"verify: {state['n']}/{total} cases  {kinds}"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def verify_main(args: argparse.Namespace) -> int:
    from codecgen.backends import python as pyb
    from codecgen.frontend import load
    from codecgen.verify.cases import CaseMaker
    from codecgen.verify.native import native_codec
    from codecgen.verify.run import case_from_json, difference, run_cases, write_reproducer

    if args.cases < 1:
        raise UserError("--cases must be at least 1")
    proto = load(args.spec, target=args.target)
    module = pyb.load(proto)
    started = time.perf_counter()
    print(f"verify: building {proto.name} with {args.compiler} -std={args.std}"
          f"{'' if args.no_sanitize else ' -fsanitize=address,undefined'}", file=sys.stderr)
    native = native_codec(proto, args.codec_dir, target=args.target, compiler=args.compiler,
                          std=args.std, sanitize=not args.no_sanitize)
    built = time.perf_counter()
    try:
        if args.replay:
            path = Path(args.replay)
            if not path.is_file():
                raise UserError(f"--replay {args.replay}: no such file")
            try:
                cases = [case_from_json(json.loads(path.read_text())["case"])]
            except (ValueError, KeyError) as exc:
                raise UserError(f"--replay {args.replay}: not a reproducer ({exc})") from None
            total = 1
        else:
            cases = CaseMaker(proto, module, random.Random(args.seed)).cases(args.cases)
            total = args.cases
        report = run_cases(module, native, cases, progress=_progress_printer(total))
    finally:
        native.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    print(f"verify {proto.name}: {sum(report.counts.values())} cases ({kinds}); "
          f"build {built - started:.1f}s, cases {report.seconds:.1f}s")
    if report.ok:
        print(f"verify {proto.name}: OK: the C++ codec and the reference codec agree on every case")
        return 0
    mismatch = report.mismatches[0]
    case = mismatch["case"]
    out = Path(args.out) / f"{proto.name}-{case['kind']}-seed{args.seed}.json"
    write_reproducer(out, args.spec, mismatch)
    data = case.get("data")
    print(f"verify {proto.name}: MISMATCH in a {case['kind']} case: {mismatch['difference']}")
    print(f"  direction {case.get('direction')}  chunks {case.get('chunks')}  "
          f"{'mutation ' + json.dumps(case['mutation']) if 'mutation' in case else ''}"
          f"{'error_type ' + str(case['error_type']) if 'error_type' in case else ''}")
    print(f"  input ({0 if data is None else len(data)} bytes): {'(empty metadata)' if data is None else data.hex()}")
    print(f"  reproducer: {out}")
    print(f"  replay: codecgen verify {args.spec}"
          f"{' --codec-dir ' + args.codec_dir if args.codec_dir else ''} --replay {out}")
    return 1
