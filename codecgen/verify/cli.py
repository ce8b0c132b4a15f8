"""``codecgen verify`` on the command line: arguments -> ``codecgen.verify.session.verify``."""

from __future__ import annotations

import argparse
from dataclasses import fields

from codecgen.verify.session import DEFAULT_CASES, VerifyOptions, verify


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


def verify_main(args: argparse.Namespace) -> int:
    return verify(VerifyOptions(**{f.name: getattr(args, f.name) for f in fields(VerifyOptions)}))
