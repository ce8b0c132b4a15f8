"""Build a libFuzzer binary around a codec folder, reusing the host model's build cache.

The codec's sources, the harness (decode loop, driver, metadata) and the fuzz entry point
(``codecgen/hostmodel/fuzz/codec_fuzzer.cc``) are compiled with clang++ and
``-fsanitize=fuzzer-no-link`` plus the harness's ASan/UBSan flags, so coverage comes from the
codec and the contract checks; the model of Envoy's buffer is compiled with the sanitizers only
(its loops would add coverage noise and cost). Objects and binaries are cached by content under
the same cache folder as ``codecgen.hostmodel.build`` (``$CODECGEN_CACHE`` or
``~/.cache/codecgen``), so a second run with the same codec links nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codecgen.hostmodel import build as hb
from codecgen.naming import codec_name
from codecgen.pins import default_target_name
from codecgen.verify.fixtures import cpp_header

FUZZ_DIR = hb.MODEL_ROOT / "fuzz"
FUZZ_SOURCE = FUZZ_DIR / "codec_fuzzer.cc"
TRIVIAL_CODEC = FUZZ_DIR / "trivial"
# The harness pieces the fuzz target drives; capi.cc, wire.cc and buffer_probe.cc serve ctypes.
HARNESS = tuple(hb.HARNESS_DIR / n for n in ("decode_loop.cc", "driver.cc", "metadata_impl.cc"))
OPTIMIZE = "-O1"
_FUZZER_COMPILE = "-fsanitize=fuzzer-no-link"
_FUZZER_LINK = ("-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
                "-fno-omit-frame-pointer")
# --fast: UBSan only. ASan's allocator (quarantine, poisoning, a stack trace per malloc) is most
# of what an input costs on the host model, whose buffers allocate per decode call.
_FAST_LINK = ("-fsanitize=fuzzer,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class FuzzFlavor(hb.Flavor):
    """A host-model flavor with libFuzzer coverage instrumentation (``instrument``) and the
    factory name baked in (``define``)."""

    instrument: bool = True
    define: str = ""
    asan: bool = True

    def compile_flags(self) -> list[str]:
        flags = super().compile_flags()
        if not self.asan:
            flags = [f.replace("-fsanitize=address,undefined", "-fsanitize=undefined") for f in flags]
        if self.instrument:
            flags.append(_FUZZER_COMPILE)
        if self.define:
            flags.append(self.define)
        return flags


def _flavor(tc: hb.Toolchain, instrument: bool, define: str = "", asan: bool = True) -> FuzzFlavor:
    return FuzzFlavor(tc, "c++17", True, default_target_name(), OPTIMIZE, instrument, define, asan)


def fuzzer_objects(codec_dir: Path, name: str, *, cache_dir: Path | None = None,
                   compiler: str = "clang++", asan: bool = True) -> tuple[hb.Toolchain, list[Path]]:
    """Compile (or reuse) every object of the fuzz target; returns the toolchain and objects."""
    cache = Path(cache_dir) if cache_dir is not None else hb.default_cache_dir()
    tc = hb.toolchain(compiler)
    if tc.family != "clang":
        raise FileNotFoundError(f"libFuzzer needs clang++, {compiler!r} is {tc.version}")
    factory = codec_name(name)
    instrumented = _flavor(tc, True, asan=asan)
    plain = _flavor(tc, False, asan=asan)
    entry = _flavor(tc, False, f'-DCODECGEN_FUZZ_FACTORY="{factory}"', asan=asan)
    model_includes = [hb.MODEL_INCLUDE, hb.HARNESS_DIR]
    digest = hb.model_digest()
    fixtures = _fixtures_dir(cache)
    jobs = hb.codec_jobs(instrumented, codec_dir, name, cache)
    jobs += [(plain, src, model_includes, digest, cache) for src in (*HARNESS, *hb.MODEL_SOURCES)]
    jobs += [(entry, FUZZ_SOURCE, [fixtures, *model_includes], hb.content_digest(digest, fixtures.name), cache)]
    return tc, _compile_all(jobs)


def _fixtures_dir(cache: Path) -> Path:
    """A folder holding ``codec_fuzzer_fixtures.h`` (from codecgen.verify.fixtures), named by
    its content so the entry point's cache key follows the table."""
    text = cpp_header()
    folder = cache / "fuzz-fixtures" / hb.content_digest(text)[:16]
    header = folder / "codec_fuzzer_fixtures.h"
    if not header.is_file():
        tmp = hb.atomic_write_dir(folder.parent)
        (tmp / header.name).write_text(text)
        try:
            os.replace(tmp, folder)
        except OSError:  # written concurrently by someone else
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _compile_all(jobs: list[tuple]) -> list[Path]:
    """hb.compile_all, with clang's compile errors kept: clang deletes its output file when
    it fails, so hb._compile's cleanup (os.unlink of that file) raises FileNotFoundError and
    hides the CompileError. Recompile the failing job here to report the compiler's error."""
    try:
        return hb.compile_all(jobs)
    except FileNotFoundError as exc:
        if ".tmp-" not in str(exc):
            raise
    for flavor, source, includes, *_rest in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            command = [flavor.toolchain.path, *flavor.compile_flags(), *(f"-I{p}" for p in includes),
                       "-c", str(source), "-o", str(Path(tmp) / "out.o")]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                output = result.stderr + result.stdout
                rewrite = _rest[2] if len(_rest) > 2 else ("", "")
                if rewrite[0]:
                    output = output.replace(*rewrite)
                raise hb.CompileError(source, command, output)
    return hb.compile_all(jobs)


def build_fuzzer(codec_dir: Path, name: str, *, cache_dir: Path | None = None,
                 compiler: str = "clang++", asan: bool = True) -> Path:
    """Build (or reuse) ``codecgen-fuzz-<name>`` for the codec in ``codec_dir``: with
    ``-fsanitize=fuzzer,address,undefined``, or ``fuzzer,undefined`` when ``asan`` is False.

    :raises CompileError: with the compiler's first error lines.
    :raises FileNotFoundError: if clang++ (or its fuzzer runtime) is missing.
    """
    cache = Path(cache_dir) if cache_dir is not None else hb.default_cache_dir()
    tc, objects = fuzzer_objects(codec_dir, name, cache_dir=cache, compiler=compiler, asan=asan)
    link = _FUZZER_LINK if asan else _FAST_LINK
    key = hb.content_digest(tc.version, *link, *(o.name for o in objects))
    binary = cache / "fuzz" / key / f"codecgen-fuzz-{name}"
    if binary.exists():
        return binary
    tmp = hb.atomic_write_dir(binary.parent.parent)
    # The resolved path is `clang`: link as clang++ so the C++ sanitizer runtimes come along.
    command = [tc.path, "--driver-mode=g++", "-o", str(tmp / binary.name), *map(str, objects), *link]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise hb.CompileError(binary, command, result.stderr + result.stdout)
    try:
        os.replace(tmp, binary.parent)
    except OSError:  # built concurrently by someone else
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def build_trivial_fuzzer(cache_dir: Path | None = None, asan: bool = True) -> Path:
    """The same target around a codec whose decode reads one byte and waits (the baseline)."""
    return build_fuzzer(TRIVIAL_CODEC, "trivial", cache_dir=cache_dir, asan=asan)
