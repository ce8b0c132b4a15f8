"""A ``codecgen fuzz`` run: coverage-guided (libFuzzer) and differential fuzzing of a codec.

``fuzz(FuzzOptions(spec, ...))`` builds the targets, runs the libFuzzer jobs and differential
lanes side by side, collects and minimizes findings and prints the summary; the command line
(``codecgen.fuzz.cli``) only parses arguments into ``FuzzOptions``.

Exit 0 with no findings, 1 with findings (each saved as a reproducer, see findings.py), 2 on
bad input (one line on stderr). Live progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from codecgen.errors import UserError

MODES = ("libfuzzer", "differential", "both")
DEFAULT_TIME = 60.0
DEFAULT_WORK_DIR = ".codecgen-fuzz"
MIN_MAX_LEN = 256


def default_jobs() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


@dataclass
class FuzzOptions:
    """What ``codecgen fuzz`` was asked (``codecgen.fuzz.cli`` fills it from the command line)."""

    spec: str
    codec_dir: Optional[str] = None
    time: float = DEFAULT_TIME
    jobs: int = field(default_factory=default_jobs)
    mode: str = "both"
    corpus: Optional[str] = None
    work_dir: str = DEFAULT_WORK_DIR
    replay: Optional[str] = None
    seed: Optional[int] = None
    max_len: Optional[int] = None
    minimize_seconds: float = 10.0
    ignore: list = field(default_factory=list)
    fast: bool = False
    keep_going: bool = False
    target: Optional[str] = None


# --------------------------------------------------------------------------- setup


@dataclass
class Setup:
    spec: str
    codec_dir: Optional[str]
    proto: object
    module: object
    folder: Path
    work: Path
    corpus: Path
    findings_root: Path


def _prepare(options) -> Setup:
    from codecgen.backends import python as pyb
    from codecgen.frontend import load
    from codecgen.engines.native import codec_folder

    if options.time <= 0:
        raise UserError("--time must be a positive number of seconds")
    if options.jobs < 1:
        raise UserError("--jobs must be at least 1")
    if options.max_len is not None and options.max_len < 16:
        raise UserError("--max-len must be at least 16")
    if options.minimize_seconds < 0:
        raise UserError("--minimize-seconds must not be negative")
    proto = load(options.spec, target=options.target)
    module = pyb.load(proto)
    folder = codec_folder(proto, options.codec_dir, options.target)
    work = Path(options.work_dir)
    _make_work_dir(work)
    base = work / proto.name
    corpus = Path(options.corpus) if options.corpus else base / "corpus"
    if corpus.exists() and not corpus.is_dir():
        raise UserError(f"--corpus {corpus}: exists and is not a folder")
    return Setup(options.spec, options.codec_dir, proto, module, folder, base, corpus, base / "findings")


def _make_work_dir(work: Path) -> None:
    """The work folder ignores itself in git (like .pytest_cache), so nothing needs adding."""
    try:
        work.mkdir(parents=True, exist_ok=True)
        ignore = work / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by codecgen fuzz: corpus, seeds and findings stay local\n*\n")
    except OSError as exc:
        raise UserError(f"--work-dir {work}: {exc.strerror or exc}") from None


def _build_fuzzer(setup: Setup, asan: bool = True) -> Path:
    from codecgen.fuzz.build import build_fuzzer
    from codecgen.hostmodel.build import CompileError

    try:
        return build_fuzzer(setup.folder, setup.proto.name, asan=asan)
    except CompileError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{setup.folder}: the codec does not compile for libFuzzer: "
                        f"{first[0] if first else exc}") from None
    except FileNotFoundError as exc:
        raise UserError(f"libFuzzer needs clang++ with its fuzzer runtime: {exc}") from None


def _native(setup: Setup, sanitize: bool, target: Optional[str]):
    """The C++ codec for the differential: a worker process (a crash ends only the worker);
    with sanitizers when libFuzzer does not run them already."""
    from codecgen.engines.native import native_codec

    return native_codec(setup.proto, setup.folder, target=target, sanitize=sanitize, isolate=True)


def _write_seeds(setup: Setup, rng: random.Random) -> tuple[Path, Path, int]:
    """Seeds and dictionary files; returns their paths and the largest seed's size."""
    from codecgen.fuzz.inputs import dictionary, dictionary_text, seeds

    seed_dir = setup.work / "seeds"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for old in seed_dir.iterdir():
        old.unlink()
    largest = 0
    for i, data in enumerate(seeds(setup.proto, setup.module, rng)):
        (seed_dir / f"seed-{i:03d}").write_bytes(data)
        largest = max(largest, len(data))
    dict_path = setup.work / "dictionary.txt"
    dict_path.write_text(dictionary_text(dictionary(setup.proto)))
    return seed_dir, dict_path, largest


# --------------------------------------------------------------------------- differential lanes


@dataclass
class LaneStats:
    cases: int = 0
    by_kind: dict = field(default_factory=dict)
    corpus_replayed: int = 0


def _lane_child(spec, codec_dir, target, sanitize, seed, seconds, corpus, queue, stop_event):
    """A differential lane in its own process (``--jobs`` beyond the first lane)."""
    from codecgen.backends import python as pyb
    from codecgen.frontend import load
    from codecgen.fuzz.differential import Differential
    from codecgen.engines.native import codec_folder

    proto = load(spec, target=target)
    module = pyb.load(proto)
    setup = Setup(spec, codec_dir, proto, module, codec_folder(proto, codec_dir, target),
                  Path("."), Path(corpus) if corpus else Path("."), Path("."))
    native = _native(setup, sanitize, target)
    lane = Differential(proto, module, native, seed, Path(corpus) if corpus else None)
    deadline = time.monotonic() + seconds
    last = 0.0

    def report():
        queue.put(("stats", (lane.stats.cases, dict(lane.stats.by_kind), lane.stats.corpus_replayed)))

    def on_finding(finding):
        queue.put(("finding", (finding.case, finding.difference, finding.report)))

    try:
        while time.monotonic() < deadline and not stop_event.is_set():
            lane.run(min(deadline, time.monotonic() + 0.5), stop_event.is_set, on_finding)
            if time.monotonic() - last > 0.5:
                report()
                last = time.monotonic()
        report()
    finally:
        native.close()
        queue.put(("done", None))


# --------------------------------------------------------------------------- the run


class Run:
    def __init__(self, options, setup: Setup):
        self.options = options
        self.setup = setup
        self.name = setup.proto.name
        self.seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.mode = options.mode
        if self.mode == "both":
            self.lib_jobs = max(1, (options.jobs + 1) // 2)
            self.diff_lanes = max(1, options.jobs - self.lib_jobs)
        elif self.mode == "libfuzzer":
            self.lib_jobs, self.diff_lanes = options.jobs, 0
        else:
            self.lib_jobs, self.diff_lanes = 0, options.jobs
        self.findings: list = []
        self.signatures: set = set()
        self.crash_signatures: set = set()
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.campaign = None
        self.binary: Optional[Path] = None
        self.lanes: list = []  # (LaneStats) per lane, [0] is in-process
        self.children: list = []
        self.started = 0.0
        self.lock = threading.Lock()
        self.diff_main = None
        self.max_len = options.max_len or MIN_MAX_LEN
        self.worker_binary: Optional[Path] = None
        self.asan_replayed = False

    # ------------------------------------------------------------------ findings

    def add_differential(self, case, difference, report=""):
        from codecgen.fuzz.differential import difference_signature
        from codecgen.fuzz.findings import write_differential

        if any(text in difference for text in self.options.ignore):
            return
        with self.lock:
            signature = difference_signature(difference)
            if signature in self.signatures:
                return
            self.signatures.add(signature)
            finding = write_differential(self.setup.findings_root, self.setup.spec, self.name,
                                         self.setup.codec_dir, case, difference, report)
            if any(f.folder == finding.folder for f in self.findings):
                return
            self.findings.append(finding)
        self._announce(finding)
        if not self.options.keep_going:
            self.stop.set()

    def _announce(self, finding) -> None:
        print(f"\nfuzz {self.name}: FINDING ({finding.engine}): {finding.summary}", file=sys.stderr,
              flush=True)

    def collect_crashes(self, minimize: bool) -> None:
        from codecgen.fuzz.findings import write_libfuzzer
        from codecgen.fuzz.libfuzzer import minimize_crash, replay

        if self.campaign is None:
            return
        from codecgen.fuzz.differential import difference_signature

        for crash in list(self.campaign.crashes):
            signature = difference_signature(crash.summary.split("CONTRACT VIOLATION:")[-1])
            if signature in self.crash_signatures or not crash.artifact.is_file():
                continue
            self.crash_signatures.add(signature)
            minimized = None
            seconds = int(self.options.minimize_seconds)
            if minimize and seconds > 0 and "timeout" not in crash.artifact.name \
                    and "oom" not in crash.artifact.name:
                minimized = minimize_crash(self.binary, crash.artifact,
                                           crash.artifact.with_name(crash.artifact.name + ".min"),
                                           seconds=seconds)
            code, output = replay(self.binary, minimized or crash.artifact)
            report = output if code != 0 else crash.log
            summary = _first_report_line(report) or crash.summary
            finding = write_libfuzzer(self.setup.findings_root, self.setup.spec, self.name,
                                      self.setup.codec_dir, self.binary, crash.artifact, minimized,
                                      summary, report)
            with self.lock:
                self.findings.append(finding)
        self.campaign.crashes.clear()

    # ------------------------------------------------------------------ main loop

    def execute(self) -> int:
        from codecgen.fuzz.differential import Differential
        from codecgen.fuzz.libfuzzer import Campaign

        setup = self.setup
        rng = random.Random(self.seed)
        natives = []
        if self.lib_jobs:
            print(f"fuzz {self.name}: building the libFuzzer target (clang++ "
                  "-fsanitize=fuzzer,address,undefined)", file=sys.stderr, flush=True)
            self.binary = _build_fuzzer(setup)
            self.worker_binary = self.binary
            if self.options.fast:
                print(f"fuzz {self.name}: --fast: the workers run a -fsanitize=fuzzer,undefined build; "
                      "the corpus is replayed under ASan at the end", file=sys.stderr, flush=True)
                self.worker_binary = _build_fuzzer(setup, asan=False)
        sanitize_diff = self.mode == "differential"
        if self.diff_lanes:
            print(f"fuzz {self.name}: building the C++ codec for the differential (g++"
                  f"{' -fsanitize=address,undefined' if sanitize_diff else ''})", file=sys.stderr, flush=True)
            natives.append(_native(setup, sanitize_diff, self.options.target))
        seed_dir, dict_path, largest = _write_seeds(setup, rng)
        self.max_len = self.options.max_len or min(4096, max(MIN_MAX_LEN, 4 * largest))
        seconds = self.options.time
        self.started = time.monotonic()
        deadline = self.started + seconds
        try:
            if self.lib_jobs:
                self.campaign = Campaign(self.worker_binary, setup.corpus, seed_dir, dict_path,
                                         setup.work / "artifacts", seconds, self.lib_jobs,
                                         self.max_len, ignore=tuple(self.options.ignore))
                self.campaign.start()
            threads = []
            if self.diff_lanes:
                corpus = setup.corpus if self.lib_jobs else None
                self.diff_main = Differential(setup.proto, setup.module, natives[0], self.seed, corpus)
                thread = threading.Thread(target=self._run_differential, args=(deadline,), daemon=True)
                thread.start()
                threads.append(thread)
                self._start_children(deadline, corpus, sanitize_diff)
            self._watch(deadline, threads)
        finally:
            self.stop.set()
            if self.campaign is not None:
                self.campaign.stop()
            for child, _, _ in self.children:
                child.join(timeout=15)
                if child.is_alive():
                    child.terminate()
            for native in natives:
                native.close()
        if self.options.fast and self.campaign is not None and (self.options.keep_going or not self.findings
                                                              and not self.campaign.crashes):
            self._replay_corpus_under_asan(seed_dir)
        self.collect_crashes(minimize=True)
        self._summary(time.monotonic() - self.started)
        return 1 if self.findings else 0

    def _replay_corpus_under_asan(self, seed_dir: Path) -> None:
        """--fast: run every corpus input once through the ASan+UBSan build."""
        import subprocess

        from codecgen.fuzz.libfuzzer import Crash, ARTIFACT

        artifacts = self.setup.work / "artifacts"
        command = [str(self.binary), "-runs=0", f"-artifact_prefix={artifacts}/", "-timeout=10",
                   f"-max_len={self.max_len}", str(self.setup.corpus), str(seed_dir)]
        print(f"fuzz {self.name}: replaying the corpus under ASan", file=sys.stderr, flush=True)
        try:
            result = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=600)
        except subprocess.TimeoutExpired:
            self.errors.append("the ASan replay of the corpus took more than 600 s")
            return
        self.asan_replayed = True
        found = ARTIFACT.search(result.stderr)
        if result.returncode != 0 and found:
            log = result.stderr
            self.campaign.crashes.append(Crash(Path(found.group(1)), _first_report_line(log) or
                                               "the ASan replay of the corpus stopped", log))

    def _run_differential(self, deadline):
        try:
            self.diff_main.run(deadline, self.stop.is_set,
                               lambda f: self.add_differential(f.case, f.difference, f.report))
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the run goes on
            import traceback

            self.errors.append(f"the differential lane stopped: {type(exc).__name__}: {exc}\n"
                               + "".join(traceback.format_exc(limit=6)))

    def _start_children(self, deadline, corpus, sanitize):
        import multiprocessing

        if self.diff_lanes < 2:
            return
        ctx = multiprocessing.get_context("spawn")
        self.child_stop = ctx.Event()
        for lane in range(1, self.diff_lanes):
            queue = ctx.Queue()
            stats = LaneStats()
            child = ctx.Process(target=_lane_child, daemon=True, args=(
                self.setup.spec, self.setup.codec_dir, self.options.target, sanitize, self.seed + lane,
                max(1.0, deadline - time.monotonic()), str(corpus) if corpus else None, queue,
                self.child_stop))
            child.start()
            self.children.append((child, queue, stats))

    def _drain_children(self):
        import queue as queue_mod

        for child, q, stats in self.children:
            while True:
                try:
                    kind, payload = q.get_nowait()
                except queue_mod.Empty:
                    break
                except (EOFError, OSError):
                    break
                if kind == "stats":
                    stats.cases, stats.by_kind, stats.corpus_replayed = payload
                elif kind == "finding":
                    self.add_differential(*payload)

    def _watch(self, deadline, threads):
        tty = sys.stderr.isatty()
        last_print = 0.0
        interval = 1.0 if tty else 5.0
        while True:
            now = time.monotonic()
            self._drain_children()
            if self.campaign is not None:
                if self.campaign.crashes:
                    for crash in self.campaign.crashes:
                        self._announce_crash(crash)
                    if not self.options.keep_going:
                        self.stop.set()
                    else:
                        self.collect_crashes(minimize=True)
                        self.campaign.restart_finished()
            if self.stop.is_set() and hasattr(self, "child_stop"):
                self.child_stop.set()
            lib_alive = self.campaign is not None and self.campaign.running()
            diff_alive = any(t.is_alive() for t in threads) or any(c.is_alive() for c, _, _ in self.children)
            if now >= deadline or self.stop.is_set() or not (lib_alive or diff_alive):
                break
            if now - last_print >= interval:
                last_print = now
                line = self._progress(now)
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
            time.sleep(0.2)
        for thread in threads:
            thread.join(timeout=30)
        self._drain_children()
        if tty:
            print(file=sys.stderr)

    def _announce_crash(self, crash):
        if getattr(crash, "_announced", False):
            return
        crash._announced = True
        print(f"\nfuzz {self.name}: FINDING (libfuzzer): {crash.summary}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ reporting

    def diff_totals(self) -> tuple[int, dict, int]:
        cases, kinds, replayed = 0, {}, 0
        if self.diff_main is not None:
            cases += self.diff_main.stats.cases
            replayed += self.diff_main.stats.corpus_replayed
            for k, v in list(self.diff_main.stats.by_kind.items()):
                kinds[k] = kinds.get(k, 0) + v
        for _, _, stats in self.children:
            cases += stats.cases
            replayed += stats.corpus_replayed
            for k, v in stats.by_kind.items():
                kinds[k] = kinds.get(k, 0) + v
        return cases, kinds, replayed

    def _progress(self, now) -> str:
        elapsed = now - self.started
        parts = [f"fuzz {self.name} {elapsed:4.0f}s/{self.options.time:.0f}s"]
        if self.campaign is not None:
            t = self.campaign.totals()
            parts.append(f"libfuzzer {t['workers']} job(s) {_k(t['exec_per_s'])} exec/s "
                         f"{_k(t['execs'])} execs cov {t['cov']} ft {t['ft']} corpus {t['corpus']}")
        if self.diff_lanes:
            cases, _, replayed = self.diff_totals()
            parts.append(f"differential {_k(cases / max(elapsed, 1e-9))} cases/s {_k(cases)} cases"
                         f" ({replayed} from the corpus)")
        parts.append(f"findings {len(self.findings) + (len(self.campaign.crashes) if self.campaign else 0)}")
        return " | ".join(parts)

    def _summary(self, elapsed: float) -> None:
        name = self.name
        print(f"fuzz {name}: {elapsed:.0f} s, mode {self.mode}, seed {self.seed}, "
              f"{self.lib_jobs} libFuzzer job(s)"
              f"{f' (-max_len={self.max_len})' if self.lib_jobs else ''}, "
              f"{self.diff_lanes} differential lane(s)")
        if self.campaign is not None:
            t = self.campaign.totals()
            rate = t["execs"] / max(elapsed, 1e-9)
            print(f"  libfuzzer: {t['execs']:,} executions ({rate:,.0f}/s), coverage {t['cov']} "
                  f"edges / {t['ft']} features, corpus {t['corpus']} inputs in {self.setup.corpus}")
            if self.options.fast:
                print(f"  libfuzzer binary (--fast, UBSan only): {self.worker_binary}")
                print(f"  corpus replayed under ASan+UBSan: {'yes' if self.asan_replayed else 'no'}"
                      f" ({self.binary})")
            else:
                print(f"  libfuzzer binary: {self.binary}")
        if self.diff_lanes:
            cases, kinds, replayed = self.diff_totals()
            detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            print(f"  differential: {cases:,} cases ({cases / max(elapsed, 1e-9):,.0f}/s): {detail}"
                  + (f"; {replayed} libFuzzer corpus inputs replayed" if replayed else ""))
        for error in self.errors:
            print(f"  warning: {error}")
        for i, finding in enumerate(self.findings, 1):
            print(f"  finding {i} ({finding.engine}): {finding.summary}")
            print(f"    reproducer: {finding.folder}")
            for command in finding.replay:
                print(f"    replay: {command}")
        if self.findings:
            print(f"fuzz {name}: {len(self.findings)} finding(s)")
        else:
            print(f"fuzz {name}: OK: no findings")


def _k(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def _first_report_line(report: str) -> str:
    for marker in ("CONTRACT VIOLATION:", "ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer", "ERROR: libFuzzer", "ALARM:", "SUMMARY:"):
        for line in report.splitlines():
            if marker in line:
                text = line.strip()
                if marker == "CONTRACT VIOLATION:":
                    text = "contract violation: " + text.split(marker, 1)[1].strip()
                return text[:400]
    return ""


# --------------------------------------------------------------------------- replay


def _replay(options, setup: Setup) -> int:
    from codecgen.fuzz.differential import Generator, compare
    from codecgen.fuzz.libfuzzer import replay
    from codecgen.verify.run import case_from_json

    path = Path(options.replay)
    if not path.is_file():
        raise UserError(f"--replay {options.replay}: no such file")
    name = setup.proto.name
    if path.suffix == ".json":
        try:
            payload = json.loads(path.read_text())
            case = case_from_json(payload["case"] if "case" in payload else payload)
            case["kind"]  # noqa: B018 - a case names its kind
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"--replay {options.replay}: not a reproducer ({exc})") from None
        native = _native(setup, True, options.target)
        try:
            finding = compare(setup.module, native, case)
        finally:
            native.close()
        return _replay_result(name, [finding])
    raw = path.read_bytes()
    binary = _build_fuzzer(setup)
    code, output = replay(binary, path)
    from codecgen.fuzz.inputs import parse_input

    plan, stream = parse_input(raw)
    if plan is not None:
        print(f"replay {name}: {plan.describe()}; stream ({len(stream)} bytes): {stream.hex()[:200]}")
    failed = code != 0
    if failed:
        print(f"replay {name}: libFuzzer target: {_first_report_line(output) or f'exit code {code}'}")
        tail = [line for line in output.splitlines() if line.strip()][-25:]
        print("\n".join("  " + line for line in tail))
    else:
        print(f"replay {name}: libFuzzer target: no contract violation, no sanitizer report")
    print(f"  command: {binary} {path}")
    native = _native(setup, True, options.target)
    try:
        generator = Generator(setup.proto, setup.module, random.Random(0))
        findings = [compare(setup.module, native, c) for c in generator.from_input(raw, "replay")]
    finally:
        native.close()
    return max(_replay_result(name, findings), 1 if failed else 0)


def _replay_result(name: str, findings) -> int:
    bad = [f for f in findings if f is not None]
    for finding in bad:
        print(f"replay {name}: MISMATCH between the reference and the C++ codec: {finding.difference}")
        if finding.report:
            print(finding.report.rstrip()[-3000:])
    if not bad:
        print(f"replay {name}: the reference codec and the C++ codec agree")
    return 1 if bad else 0


def fuzz(options: FuzzOptions) -> int:
    """Run ``codecgen fuzz``: 0 without findings, 1 with findings (each saved as a reproducer)."""
    setup = _prepare(options)
    if options.replay:
        return _replay(options, setup)
    return Run(options, setup).execute()
