"""``codecgen fuzz`` on the command line: arguments -> ``codecgen.fuzz.run.fuzz``.

    codecgen fuzz SPEC [--codec-dir DIR] [--time SECONDS] [--jobs N]
                       [--mode libfuzzer|differential|both] [--corpus DIR] [--replay FILE]
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from codecgen.fuzz.run import DEFAULT_TIME, DEFAULT_WORK_DIR, MIN_MAX_LEN, MODES, FuzzOptions, default_jobs, fuzz


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fuzz", help="fuzz the C++ codec: libFuzzer with ASan+UBSan, and differential against the reference",
        description="Fuzz the generated (or a hand-edited) C++ codec. libfuzzer: a libFuzzer target "
                    "(clang, -fsanitize=fuzzer,address,undefined) replaying the framework contract "
                    "(chunked decode loop, encode with a mutation, onError, heartbeat), seeded with "
                    "valid frames from the spec and a dictionary of its constants. differential: "
                    "frames generated and mutated from the spec (edges, lengths +-1, truncation, "
                    "bit flips, extreme values, counts), compared between the reference codec and "
                    "the C++ codec. Exit 0 with no findings, 1 with findings (each saved as a "
                    "reproducer with a pcap and the command that replays it).")
    p.add_argument("spec", help="the protocol spec")
    p.add_argument("--codec-dir", help="a folder with <name>_codec.cc etc. (default: generate from the spec)")
    p.add_argument("--time", type=float, default=DEFAULT_TIME,
                   help=f"seconds of fuzzing, after the build (default {DEFAULT_TIME:.0f})")
    p.add_argument("--jobs", type=int, default=default_jobs(),
                   help="parallel fuzzing processes (default: min(2, cores))")
    p.add_argument("--mode", choices=MODES, default="both", help="default both")
    p.add_argument("--corpus", help="libFuzzer corpus folder, kept between runs "
                                    f"(default {DEFAULT_WORK_DIR}/<name>/corpus)")
    p.add_argument("--work-dir", default=DEFAULT_WORK_DIR,
                   help=f"where corpus, seeds and findings live (default {DEFAULT_WORK_DIR})")
    p.add_argument("--replay", help="replay one finding: a case.json (differential) or an input.bin "
                                    "(libFuzzer) written by an earlier run")
    p.add_argument("--seed", type=int, help="random seed of seeds and differential cases (default: random)")
    p.add_argument("--max-len", type=int, default=None,
                   help=f"largest libFuzzer input in bytes (default: 4 x the largest seed, at least "
                        f"{MIN_MAX_LEN}; every frame an input holds costs a decode, so longer inputs "
                        "are slower without reaching deeper)")
    p.add_argument("--minimize-seconds", type=float, default=10.0,
                   help="time libFuzzer's -minimize_crash gets per finding (default 10; 0: keep as found)")
    p.add_argument("--ignore", action="append", default=[], metavar="TEXT",
                   help="a known bug to look past: findings whose message contains TEXT are not "
                        "reported (libFuzzer goes on with the next input); repeatable")
    p.add_argument("--fast", action="store_true",
                   help="libFuzzer without ASan (-fsanitize=fuzzer,undefined: 2-3x the executions); the "
                        "corpus is replayed under ASan+UBSan when the run ends")
    p.add_argument("--keep-going", action="store_true",
                   help="keep fuzzing after a finding (default: stop at the first one)")
    p.add_argument("--target", default=None, help="meta-protocol-proxy target (codecgen/targets.yaml)")
    p.set_defaults(func=fuzz_main)


def fuzz_main(args: argparse.Namespace) -> int:
    return fuzz(FuzzOptions(**{f.name: getattr(args, f.name) for f in fields(FuzzOptions)}))
