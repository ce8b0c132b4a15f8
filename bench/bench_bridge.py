"""Scale of ``codecgen bridge`` against the Kubernetes API fake (tests/kube_fake.py, in its own
process, validating every ServiceEntry with the JSON Schema): N services x M instances.

Figures: time and memory (tracemalloc peak of the bridge process, and its RSS) of the first
full sync; API writes for an unchanged resync (must be 0) and after a restart (must be 0); API
writes per single-instance change (must be 1) and the time from the registry change to the
applied object, both through the reconciler directly and through the running loop (whose
debounce, set here to 50 ms, adds to it); then the limit at 100,000 services, extrapolated from
the measured per-service cost.

Run: python3 bench/bench_bridge.py [--services 10000] [--instances 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from pathlib import Path

from codecgen.bridge.config import SourceOptions
from codecgen.bridge.kube import Connection, Kube
from codecgen.bridge.mapping import Mapper
from codecgen.bridge.model import Instance, Service, Source
from codecgen.bridge.observe import Metrics
from codecgen.bridge.reconcile import Reconciler
from codecgen.bridge.runner import Bridge, Settings

ROOT = Path(__file__).resolve().parent.parent
NS = "bench"


class BenchSource(Source):
    """A registry in memory: N Dubbo-style services of M instances each."""

    scheme = "bench"

    def __init__(self, services: int, instances: int):
        super().__init__("bench://", "bench")
        self.services = {}
        for i in range(services):
            self.services[f"svc{i}"] = self.make(i, instances, 0)
        self.notify = None

    @staticmethod
    def make(i: int, instances: int, generation: int) -> Service:
        name = f"com.example.bench.Service{i}"
        return Service(source="bench", key=f"svc{i}", name=name, attributes={"version": "1.0.0"}, instances=tuple(
            Instance(address=f"10.{(i >> 8) & 255}.{i & 255}.{j + 1 + generation}", port=20880, protocol="dubbo",
                     labels={"application": f"app{i}", "side": "provider", "release": "3.2.0"}, weight=100)
            for j in range(instances)))

    def list(self):
        return dict(self.services)

    def watch(self, notify):
        self.notify = notify

    def healthy(self):
        return True


def counters(url: str) -> int:
    data = json.load(urllib.request.urlopen(url + "/fake/counters"))
    return sum(n for k, n in data["requests"].items() if k.split()[0] in ("PATCH", "PUT", "POST", "DELETE"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--changes", type=int, default=20)
    a = ap.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kube_fake.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    url = fake.stdout.readline().strip()
    try:
        src = BenchSource(a.services, a.instances)
        opts = SourceOptions(url="bench://", name="bench", namespace=NS)
        kube = Kube(Connection(server=url))

        def reconciler():
            return Reconciler([(opts, src)], Mapper({"bench": opts}, ["dubbo"]), kube, Metrics(), grace=60)

        print(f"bridge bench: {a.services} services x {a.instances} instances, Kubernetes API fake in its own "
              f"process (JSON Schema validation of every ServiceEntry, as the bridge does before sending), "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
        rec = reconciler()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        rec.read()
        rec.load_live()
        rec.update()
        rec.sync()
        first = time.perf_counter() - t0
        writes = counters(url)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"first full sync: {first:.1f} s ({first / a.services * 1e3:.2f} ms/service, {rec.workers} "
              f"concurrent writers), {writes} writes; process max RSS {rss:.0f} MiB ({rss0:.0f} MiB with the "
              f"registry snapshot alone)")

        before = counters(url)
        t0 = time.perf_counter()
        rec.read()
        rec.load_live()
        rec.update()
        rec.sync()
        resync = time.perf_counter() - t0
        print(f"unchanged full resync: {counters(url) - before} writes (must be 0), {resync:.1f} s "
              f"(list of {len(rec.live)} entries + compare)")

        before = counters(url)
        t0 = time.perf_counter()
        tracemalloc.start()
        restarted = reconciler()
        restarted.read()
        restarted.load_live()
        restarted.update()
        restarted.sync()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del restarted
        print(f"restart (fresh reconciler, same registry): {counters(url) - before} writes (must be 0), "
              f"{time.perf_counter() - t0:.1f} s under tracemalloc; the reconciler's state (live cache, "
              f"placement) holds {held / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB while listing")

        per_change, latencies, reads = [], [], []
        for n in range(a.changes):
            i = (n * 7919) % a.services
            before = counters(url)
            t0 = time.perf_counter()
            src.services[f"svc{i}"] = BenchSource.make(i, a.instances, n + 1)  # one instance moved
            changed = rec.read(["bench"])
            reads.append(time.perf_counter() - t0)
            rec.sync(rec.update(changed))
            latencies.append(time.perf_counter() - t0)
            per_change.append(counters(url) - before)
        print(f"single-instance change, reconciler: writes per change {sorted(set(per_change))} (must be [1]); "
              f"change -> applied median {statistics.median(latencies) * 1e3:.1f} ms, max "
              f"{max(latencies) * 1e3:.1f} ms, of which reading and diffing the {a.services}-service snapshot "
              f"{statistics.median(reads) * 1e3:.1f} ms")

        settings = Settings(sources=[opts], protocols=["dubbo"], debounce=0.05, max_delay=1.0, resync=3600,
                            listen=None)
        bridge = Bridge(settings, kube, [(opts, src)])
        bridge.rec = rec  # the warm state above: no second full sync to wait for
        bridge._full = False
        bridge._next_resync = time.monotonic() + 3600
        bridge.start()
        loop = []
        try:
            for n in range(5):
                i = (n * 104729 + 13) % a.services
                src.services[f"svc{i}"] = BenchSource.make(i, a.instances, 50 + n)
                want = f"10.{(i >> 8) & 255}.{i & 255}.{51 + n}"
                t0 = time.perf_counter()
                src.notify({f"svc{i}"})
                name = f"aeraki-com-example-bench-service{i}-1-0-0"
                while True:
                    obj = kube.get("ServiceEntry", NS, name)
                    if obj and obj["spec"]["endpoints"][0]["address"] == want:
                        break
                    time.sleep(0.005)
                loop.append(time.perf_counter() - t0)
        finally:
            bridge.stop()
        print(f"single-instance change, running loop (debounce 50 ms): change -> visible via GET median "
              f"{statistics.median(loop) * 1e3:.0f} ms")

        scale = 100_000 / a.services
        apply_ms = (statistics.median(latencies) - statistics.median(reads)) * 1e3
        print(f"at 100,000 services (x{scale:.0f}, linear extrapolation): first sync ~{first * scale / 60:.1f} min, "
              f"reconciler state ~{held * scale / 2**30:.2f} GiB, a full resync ~{resync * scale / 60:.1f} min, a "
              f"single change ~{statistics.median(reads) * scale * 1e3 + apply_ms:.0f} ms (the snapshot diff grows "
              f"with N, the apply does not). What stops it there: a full resync maps every service again (CPU, "
              f"one core under the GIL) and holds every desired entry at once (memory, on top of the registry "
              f"snapshot and the live cache's digests); the first sync itself is bounded by the API server's "
              f"write rate.")
    finally:
        fake.stdin.close()
        fake.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
