"""libFuzzer executions per second: each protocol's fuzz target next to a trivial one (issue 5).

For every protocol in protocols/ (or those named) this builds the libFuzzer target of
``codecgen fuzz`` (codecgen/hostmodel/fuzz/codec_fuzzer.cc around the generated codec,
clang -fsanitize=fuzzer,address,undefined) and the same target around a codec whose decode only
reads the first byte (codecgen/hostmodel/fuzz/trivial), runs each from the protocol's seeds
with the protocol's dictionary for --seconds, and prints executions per second side by side
with the ratio; then the same for the ``--fast`` builds (-fsanitize=fuzzer,undefined, no ASan).
Goal: >= 100k execs/s for awesomerpc on the 2-core reference machine (one process).

Run: python3 bench/bench_fuzz.py [--seconds 5] [--repeat 1] [--runs N] [protocol ...]

--runs N runs a fixed number of executions instead of a fixed time. The load average is
printed first: the figures are only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from codecgen.backends import python as pyb
from codecgen.frontend import load
from codecgen.fuzz.build import build_fuzzer, build_trivial_fuzzer
from codecgen.fuzz.inputs import dictionary, dictionary_text, seeds
from codecgen.engines.native import generated_codec_dir

ROOT = Path(__file__).resolve().parent.parent
# Known bugs would end a run at once (message texts, see CODECGEN_FUZZ_IGNORE); none open now.
KNOWN_BUGS: tuple[str, ...] = ()


def run_target(binary: Path, seed_dir: Path, dict_path: Path, seconds: float, runs: int | None,
               max_len: int) -> tuple[int, float]:
    """(executions, executions per second) of one libFuzzer run from a fresh corpus."""
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as corpus:
        limit = f"-runs={runs}" if runs else f"-max_total_time={int(seconds)}"
        command = [str(binary), limit, "-print_final_stats=1", f"-dict={dict_path}", f"-max_len={max_len}",
                   "-seed=1", f"-artifact_prefix={corpus}/", corpus, str(seed_dir)]
        # Known bugs (pinned by strict xfails) would end a run at once: look past them.
        env = dict(os.environ)
        if KNOWN_BUGS:
            env["CODECGEN_FUZZ_IGNORE"] = "|".join(KNOWN_BUGS)
        result = subprocess.run(command, capture_output=True, text=True, errors="replace", env=env)
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", result.stderr, re.M))
    if "number_of_executed_units" not in stats:
        tail = "\n".join(result.stderr.splitlines()[-15:])
        raise RuntimeError(f"{binary.name} gave no final stats (exit {result.returncode}):\n{tail}")
    return int(stats["number_of_executed_units"]), float(stats["average_exec_per_sec"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocols", nargs="*", help="protocol names (default: every spec in protocols/)")
    parser.add_argument("--seconds", type=float, default=5.0, help="fuzzing time per target (default 5)")
    parser.add_argument("--runs", type=int, default=None, help="a fixed number of executions instead")
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs per target (default 1)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="-max_len (default as codecgen fuzz: 4 x the largest seed, at least 256)")
    args = parser.parse_args()

    specs = sorted(p for p in (ROOT / "protocols").glob("*.py") if not p.name.startswith("_"))
    if args.protocols:
        specs = [s for s in specs if s.stem in args.protocols]
    load1, load5, _ = os.getloadavg()
    print(f"bench_fuzz: {os.cpu_count()} cores, load average {load1:.2f} / {load5:.2f}; "
          f"{'%d runs' % args.runs if args.runs else '%.0f s' % args.seconds} per target, "
          f"best of {args.repeat}", flush=True)
    trivial = {True: build_trivial_fuzzer(), False: build_trivial_fuzzer(asan=False)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-seeds-") as tmp:
        for spec in specs:
            proto = load(spec)
            module = pyb.load(proto)
            binary = {asan: build_fuzzer(generated_codec_dir(proto), proto.name, asan=asan)
                      for asan in (True, False)}
            seed_dir = Path(tmp) / proto.name
            seed_dir.mkdir()
            largest = 0
            for i, data in enumerate(seeds(proto, module, random.Random(1))):
                (seed_dir / f"seed-{i:03d}").write_bytes(data)
                largest = max(largest, len(data))
            max_len = args.max_len or min(4096, max(256, 4 * largest))
            dict_path = Path(tmp) / f"{proto.name}.dict"
            dict_path.write_text(dictionary_text(dictionary(proto)))
            best = {key: (0, 0.0) for key in ("codec", "trivial", "codec fast", "trivial fast")}
            for _ in range(args.repeat):
                for label, target in (("codec", binary[True]), ("trivial", trivial[True]),
                                      ("codec fast", binary[False]), ("trivial fast", trivial[False])):
                    execs, rate = run_target(target, seed_dir, dict_path, args.seconds, args.runs, max_len)
                    if rate > best[label][1]:
                        best[label] = (execs, rate)
            rows.append((proto.name, best))
            print(f"  {proto.name:12s} ASan {best['codec'][1]:>9,.0f}/s (trivial {best['trivial'][1]:>9,.0f}/s)"
                  f"   fast {best['codec fast'][1]:>9,.0f}/s (trivial {best['trivial fast'][1]:>9,.0f}/s)",
                  flush=True)
    print()
    print(f"{'':12s} {'ASan+UBSan (default)':^38s} | {'--fast (UBSan only)':^38s}")
    print(f"{'protocol':12s} {'executions':>11s} {'execs/s':>9s} {'trivial/s':>10s} {'ratio':>5s} | "
          f"{'executions':>11s} {'execs/s':>9s} {'trivial/s':>10s} {'ratio':>5s}")
    for name, best in rows:
        cells = []
        for codec, base in (("codec", "trivial"), ("codec fast", "trivial fast")):
            execs, rate = best[codec]
            ratio = rate / best[base][1] if best[base][1] else 0.0
            cells.append(f"{execs:>11,d} {rate:>9,.0f} {best[base][1]:>10,.0f} {ratio:>5.2f}")
        print(f"{name:12s} " + " | ".join(cells))
    awesome = next((best for name, best in rows if name == "awesomerpc"), None)
    if awesome is not None:
        for label, key in (("ASan+UBSan", "codec"), ("--fast", "codec fast")):
            rate = awesome[key][1]
            verdict = "meets" if rate >= 100_000 else "is below"
            print(f"awesomerpc {label}: {rate:,.0f} execs/s {verdict} the goal of 100,000 (see FUZZING.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
