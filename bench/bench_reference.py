"""Throughput of the Python reference codec next to construct's compiled Struct.

Usage: python bench/bench_reference.py [--iterations N] [--repeat R] [--profile]

For each protocol (awesomerpc, meshrpc) it prints frames/s of

* ``decode``: ``Codec().decode(buf)`` taking one frame per call from a
  bytearray holding N frames (walker + parse + roles + consume), against
  ``FRAME_COMPILED.parse(frame)`` of the same frames;
* ``encode``: ``Codec().encode(metadata, {one key}, frame)`` on Request frames
  (parse + mutate + build; awesomerpc has no header map, so its encode is the
  pass-through), against ``FRAME_COMPILED.build(container)``;

and the ratio reference/construct (goal from the issue: >= 0.5).  Timing is
``time.perf_counter`` over a fixed number of iterations, best of ``--repeat``.
``--profile`` adds a cProfile of the reference decode and encode (top 12 by
total time), to see where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import time
from pathlib import Path

from codecgen.backends import python as pyb
from codecgen.frontend import load
from codecgen.verify.values import random_frame

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ("awesomerpc", "meshrpc")
DISTINCT = 64  # distinct random frames, cycled to the iteration count
MUTATION = {"x-route": "v1"}


def best_rate(run, count: int, repeat: int) -> float:
    """Frames per second of ``run()`` (which handles ``count`` frames), best of ``repeat``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        done = run()
        elapsed = time.perf_counter() - start
        assert done == count, f"ran {done} frames, expected {count}"
        best = min(best, elapsed)
    return count / best


def sample(proto, module, want) -> list[bytes]:
    rng, out = random.Random(2024), []
    while len(out) < DISTINCT:
        frame = random_frame(proto, module, rng)
        if want(module.Codec().decode(bytearray(frame))):
            out.append(frame)
    return out


def bench_protocol(name: str, iterations: int, encode_iterations: int, repeat: int, profile: bool) -> list[tuple]:
    proto = load(ROOT / "protocols" / f"{name}.py")
    module = pyb.load(proto)
    codec, compiled = module.Codec(), module.FRAME_COMPILED

    # decode: any frame; one bytearray holding all of them
    frames = sample(proto, module, lambda md: True)
    stream = [frames[i % DISTINCT] for i in range(iterations)]
    data = b"".join(stream)

    def ref_decode():
        buf, n, decode = bytearray(data), 0, codec.decode
        while buf:
            decode(buf)
            n += 1
        return n

    def cs_parse():
        parse = compiled.parse
        for frame in stream:
            parse(frame, _direction=0)
        return len(stream)

    # encode: Request frames, one mutation key
    requests = sample(proto, module, lambda md: md.message_type == "Request")
    pairs = [(module.Codec().decode(bytearray(f)), f) for f in requests]
    work = [pairs[i % DISTINCT] for i in range(encode_iterations)]
    containers = [compiled.parse(f, _direction=0) for _, f in work]

    def ref_encode():
        encode = codec.encode
        for md, frame in work:
            encode(md, MUTATION, frame)
        return len(work)

    def cs_build():
        build = compiled.build
        for c in containers:
            build(c, _direction=0)
        return len(containers)

    rows = []
    for what, ref, cs, count in (("decode", ref_decode, cs_parse, iterations),
                                 ("encode" if module.MUTABLE else "encode (pass-through)", ref_encode, cs_build,
                                  encode_iterations)):
        r = best_rate(ref, count, repeat)
        c = best_rate(cs, count, repeat)
        rows.append((name, what, r, c, r / c))
        if profile:
            _profile(f"{name} {what}", ref)
    return rows


def _profile(title: str, run) -> None:
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    print(f"--- cProfile: {title}")
    print("\n".join(line for line in out.getvalue().splitlines()[5:] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000, help="frames per decode run")
    parser.add_argument("--encode-iterations", type=int, default=50_000, help="frames per encode run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--profile", action="store_true", help="cProfile the reference codec")
    args = parser.parse_args()
    rows = []
    for name in PROTOCOLS:
        rows += bench_protocol(name, args.iterations, args.encode_iterations, args.repeat, args.profile)
    print(f"{'protocol':<11} {'operation':<22} {'reference/s':>12} {'construct/s':>12} {'ratio':>6}  (goal >= 0.5)")
    for name, what, ref, cs, ratio in rows:
        flag = "" if ratio >= 0.5 else "  below goal"
        print(f"{name:<11} {what:<22} {ref:>12,.0f} {cs:>12,.0f} {ratio:>6.2f}{flag}")


if __name__ == "__main__":
    main()
