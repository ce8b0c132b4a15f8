"""tshark with the generated Lua dissector next to tshark with Wireshark's own dissector.

Usage: python bench/bench_dissector.py [--frames N] [--repeat R] [--protocol thrift|kafka ...]

For each protocol it writes one capture of N frames (one message per TCP segment, half
requests, half responses, from ``codecgen pcap``'s sample exchanges, one connection) and
times (CPU time of the tshark process, user + system, best of R runs) the same tshark
command line on it:

* ours:     ``-X lua_script:<name>.lua -d tcp.port==P,<name>_cg --disable-protocol <name>``
* built-in: ``-d tcp.port==P,<name>``

each printing one field per frame (request id / sequence id: ``-T fields -e ...``, so the
protocol tree is built) to /dev/null, and a second time as summary lines (the default output).
It prints both times and the ratio ours / built-in (goal from the issue: <= 2).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codecgen.backends import wireshark  # noqa: E402
from codecgen.frontend import load  # noqa: E402
from codecgen.sample import Sample  # noqa: E402
from codecgen.sample.pcap import exchanges  # noqa: E402

PORT = 9090
FIELDS = {"thrift": ("thrift.seq_id", "thrift_cg.request_id"),
          "kafka": ("kafka.correlation_id", "kafka_cg.request_id")}


def capture(name: str, frames: int, folder: Path) -> Path:
    """One connection of ``frames`` segments, each one whole message. Written here with
    struct rather than scapy (codecgen pcap's writer): 100,000 scapy packets take minutes."""
    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    distinct = [pair for pair in exchanges(sample, 64) if pair[1]]
    path = folder / f"{name}.pcap"
    seq = {"request": 1000, "response": 5000}
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, Ethernet
        for i in range(frames):
            direction = "request" if i % 2 == 0 else "response"
            payload = distinct[i // 2 % len(distinct)][i % 2]
            sport, dport = (40000, PORT) if direction == "request" else (PORT, 40000)
            other = seq["response" if direction == "request" else "request"]
            tcp = struct.pack("!HHIIBBHHH", sport, dport, seq[direction], other, 5 << 4, 0x18, 65535, 0, 0)
            seq[direction] += len(payload)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), i & 0xFFFF, 0, 64, 6, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            packet = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload
            out.write(struct.pack("<IIII", 1700000000 + i // 1000, (i % 1000) * 1000, len(packet), len(packet)))
            out.write(packet)
    return path


def best(args: list[str], repeat: int) -> float:
    """Best CPU time (user + system) of the command over ``repeat`` runs: on a shared machine
    wall time mostly measures the other processes."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--protocol", action="append", choices=sorted(FIELDS))
    args = parser.parse_args()
    version = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"# {version}; {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"{args.frames} frames per capture, best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.protocol or ["thrift"]:
            lua = folder / f"{name}.lua"
            lua.write_text(wireshark.render(load(str(ROOT / "protocols" / f"{name}.py"))))
            start = time.perf_counter()
            pcap = capture(name, args.frames, folder)
            print(f"{name}: capture written in {time.perf_counter() - start:.1f} s "
                  f"({pcap.stat().st_size / 1e6:.1f} MB)")
            theirs_field, ours_field = FIELDS[name]
            ours = ["tshark", "-r", str(pcap), "-X", f"lua_script:{lua}", "-d", f"tcp.port=={PORT},{name}_cg",
                    "--disable-protocol", name]
            theirs = ["tshark", "-r", str(pcap), "-d", f"tcp.port=={PORT},{name}"]
            for mode, ours_extra, theirs_extra in (
                    ("fields", ["-T", "fields", "-e", ours_field], ["-T", "fields", "-e", theirs_field]),
                    ("summary", [], [])):
                t_ours = best(ours + ours_extra, args.repeat)
                t_theirs = best(theirs + theirs_extra, args.repeat)
                print(f"{name} {mode:8s} CPU time ours {t_ours:6.2f} s  built-in {t_theirs:6.2f} s  "
                      f"ratio {t_ours / t_theirs:.2f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
