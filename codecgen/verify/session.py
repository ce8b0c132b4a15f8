"""A ``codecgen verify`` session: build the C++ codec, run the cases, report the first mismatch."""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from codecgen.errors import UserError

DEFAULT_CASES = 2000


@dataclass
class VerifyOptions:
    """What ``codecgen verify`` was asked (``codecgen.verify.cli`` fills it from the command line)."""

    spec: str
    codec_dir: Optional[str] = None
    target: Optional[str] = None
    cases: int = DEFAULT_CASES
    seed: int = 1
    compiler: str = "g++"
    std: str = "c++17"
    no_sanitize: bool = False
    replay: Optional[str] = None
    out: str = "codecgen-verify"


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


def verify(options: VerifyOptions) -> int:
    """Build the C++ codec and run the cases (or one reproducer) against the reference codec:
    0 when they agree on every case, 1 at the first mismatch (its reproducer written)."""
    from codecgen.backends import python as pyb
    from codecgen.frontend import load
    from codecgen.verify.cases import CaseMaker
    from codecgen.engines.native import native_codec
    from codecgen.verify.run import case_from_json, difference, run_cases, write_reproducer

    if options.cases < 1:
        raise UserError("--cases must be at least 1")
    proto = load(options.spec, target=options.target)
    module = pyb.load(proto)
    started = time.perf_counter()
    print(f"verify: building {proto.name} with {options.compiler} -std={options.std}"
          f"{'' if options.no_sanitize else ' -fsanitize=address,undefined'}", file=sys.stderr)
    native = native_codec(proto, options.codec_dir, target=options.target, compiler=options.compiler,
                          std=options.std, sanitize=not options.no_sanitize)
    built = time.perf_counter()
    try:
        if options.replay:
            path = Path(options.replay)
            if not path.is_file():
                raise UserError(f"--replay {options.replay}: no such file")
            try:
                cases = [case_from_json(json.loads(path.read_text())["case"])]
            except (ValueError, KeyError) as exc:
                raise UserError(f"--replay {options.replay}: not a reproducer ({exc})") from None
            total = 1
        else:
            cases = CaseMaker(proto, module, random.Random(options.seed)).cases(options.cases)
            total = options.cases
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
    out = Path(options.out) / f"{proto.name}-{case['kind']}-seed{options.seed}.json"
    write_reproducer(out, options.spec, mismatch)
    data = case.get("data")
    print(f"verify {proto.name}: MISMATCH in a {case['kind']} case: {mismatch['difference']}")
    print(f"  direction {case.get('direction')}  chunks {case.get('chunks')}  "
          f"{'mutation ' + json.dumps(case['mutation']) if 'mutation' in case else ''}"
          f"{'error_type ' + str(case['error_type']) if 'error_type' in case else ''}")
    print(f"  input ({0 if data is None else len(data)} bytes): {'(empty metadata)' if data is None else data.hex()}")
    print(f"  reproducer: {out}")
    print(f"  replay: codecgen verify {options.spec}"
          f"{' --codec-dir ' + options.codec_dir if options.codec_dir else ''} --replay {out}")
    return 1
