"""Compile a codec together with the host model and the harness into a cached shared library.

A codec directory holds ``<name>_codec.{h,cc}``, ``config.{h,cc}`` and maybe more ``.cc``
files, and its sources include each other as ``src/application_protocols/<name>/...``. The
build makes those paths resolve without copying anything: a staging include root holds a
symlink ``src/application_protocols/<name> -> codec_dir`` and a second root holds the
generated ``.pb.h`` stubs. Every translation unit, the model's and the harness's included, is
compiled with Envoy's warning flags.

Objects and libraries are cached under ``cache_dir`` (default ``~/.cache/codecgen``) by a
SHA-256 of everything that can change them: compiler identity, flags, the source, and every
header it could include. Writes go through a temporary name and ``os.replace`` so concurrent
builds never see half-written files.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from codecgen.naming import codec_name
from codecgen.pins import default_target_name

from .pb_stub import config_message_name, write_pb_stub

MODEL_ROOT = Path(__file__).resolve().parent
MODEL_INCLUDE = MODEL_ROOT / "include"
MODEL_SOURCES = tuple(sorted((MODEL_ROOT / "src").glob("*.cc")))
HARNESS_DIR = MODEL_ROOT / "harness"
HARNESS_SOURCES = tuple(sorted(HARNESS_DIR.glob("*.cc")))

# Envoy's copts (envoy_copts in bazel/envoy_internal.bzl).
ENVOY_WARNINGS = (
    "-Wall", "-Wextra", "-Werror", "-Wnon-virtual-dtor", "-Woverloaded-virtual",
    "-Wold-style-cast", "-Wvla",
)
# The host model's API variant per pins target (envoy_build/targets.yaml names the targets;
# tests/test_ir.py checks the two agree).
TARGETS = {"1.4.2": (), "head": ("-DCODECGEN_MPP_HEAD",)}
STANDARDS = ("c++17", "c++20")
_SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
               "-fno-omit-frame-pointer")
_CODEC_SUFFIXES = {".h", ".hh", ".hpp", ".inc", ".cc", ".cpp", ".proto"}


class CompileError(RuntimeError):
    """The compiler rejected a source. ``first_errors`` holds its first error lines."""

    def __init__(self, source: Path, command: list[str], output: str):
        self.source = source
        self.command = command
        self.output = output
        self.first_errors = _first_errors(output)
        # The first line is the compiler's first error line (it names file and line).
        super().__init__("\n".join(self.first_errors) or f"{source} failed to compile")


def _first_errors(output: str, limit: int = 20) -> list[str]:
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "error" in line), 0)
    return lines[start : start + limit]


@dataclass(frozen=True)
class Toolchain:
    """A resolved C++ compiler."""

    path: str
    family: str  # "gcc" or "clang"
    version: str  # first line of --version

    def asan_runtime(self) -> str:
        """Path of the shared ASan runtime that must be preloaded into a host process."""
        name = "libasan.so" if self.family == "gcc" else "libclang_rt.asan-x86_64.so"
        return _library_path(self.path, name)

    def sanitizer_preload(self) -> list[str]:
        """LD_PRELOAD for a process that loads a sanitized library: the ASan runtime first,
        then libstdc++, which must already be mapped when ASan initialises or its __cxa_throw
        interceptor stays unresolved and the first C++ throw aborts the process."""
        return [self.asan_runtime(), _library_path(self.path, "libstdc++.so.6")]


@functools.lru_cache(maxsize=None)
def _library_path(compiler: str, name: str) -> str:
    out = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True,
                         check=True).stdout.strip()
    if not os.path.isabs(out) or not os.path.exists(out):
        raise FileNotFoundError(f"{compiler} has no {name} (install the sanitizer runtime)")
    return os.path.realpath(out)


def _find_clang() -> str | None:
    if found := shutil.which("clang++"):
        return found
    versions = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        for candidate in Path(directory).glob("clang++-[0-9]*") if os.path.isdir(directory) else ():
            if match := re.fullmatch(r"clang\+\+-(\d+)", candidate.name):
                versions.append((int(match.group(1)), str(candidate)))
    return max(versions)[1] if versions else None


@functools.lru_cache(maxsize=None)
def toolchain(compiler: str) -> Toolchain:
    """Resolve "g++", "clang++" (newest clang++-N if there is no plain clang++) or a path."""
    path = _find_clang() if compiler == "clang++" else shutil.which(compiler)
    if path is None:
        raise FileNotFoundError(f"compiler {compiler!r} is not installed")
    version = subprocess.run([path, "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    family = "clang" if "clang" in version else "gcc"
    return Toolchain(os.path.realpath(path), family, version)


@dataclass(frozen=True)
class Flavor:
    """Everything besides the sources that decides what an object file contains."""

    toolchain: Toolchain
    std: str
    sanitize: bool
    target: str
    optimize: str

    def __post_init__(self):
        if self.std not in STANDARDS:
            raise ValueError(f"std must be one of {STANDARDS}, not {self.std!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {tuple(TARGETS)}, not {self.target!r}")

    def compile_flags(self) -> list[str]:
        flags = [f"-std={self.std}", "-fPIC", self.optimize, *ENVOY_WARNINGS,
                 *TARGETS[self.target]]
        if self.toolchain.family == "gcc":
            # Function-local statics of inline functions (the factory registry) are otherwise
            # STB_GNU_UNIQUE and shared by every harness library loaded into one process.
            flags.append("-fno-gnu-unique")
        if self.sanitize:
            flags += ["-g", *_SANITIZERS]
        return flags

    def link_flags(self) -> list[str]:
        if not self.sanitize:
            return ["-Wl,-Bsymbolic"]
        flags = ["-Wl,-Bsymbolic", *_SANITIZERS]
        if self.toolchain.family == "clang":
            runtime_dir = os.path.dirname(self.toolchain.asan_runtime())
            flags += ["-shared-libasan", f"-Wl,-rpath,{runtime_dir}"]
        return flags

    def identity(self) -> str:
        return json.dumps([asdict(self.toolchain), self.compile_flags(), self.link_flags()])


def content_digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:32]


def _tree_digest(files: list[Path], root: Path) -> str:
    return content_digest(*(f"{p.relative_to(root)}\0".encode() + p.read_bytes() for p in sorted(files)))


@functools.lru_cache(maxsize=None)
def model_digest() -> str:
    """All model and harness headers: a change to any of them rebuilds everything."""
    headers = [p for p in MODEL_INCLUDE.rglob("*") if p.is_file()]
    headers += sorted(HARNESS_DIR.glob("*.h"))
    return _tree_digest(headers, MODEL_ROOT)


def _codec_files(codec_dir: Path) -> list[Path]:
    return sorted(p for p in codec_dir.rglob("*") if p.is_file() and p.suffix in _CODEC_SUFFIXES)


def atomic_write_dir(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))


def _stage(codec_dir: Path, name: str, cache: Path) -> tuple[Path, Path]:
    """Include roots for a codec: (tree with the codec symlink, generated pb stubs)."""
    proto = codec_dir / f"{name}_codec.proto"
    if proto.exists():
        message = config_message_name(proto.read_text())
    else:
        message = "".join(part.capitalize() for part in name.split("_")) + "Codec"
    stage = cache / "stage" / content_digest(str(codec_dir), name, message, model_digest())
    if not stage.exists():
        tmp = atomic_write_dir(stage.parent)
        link = tmp / "tree" / "src" / "application_protocols" / name
        link.parent.mkdir(parents=True)
        link.symlink_to(codec_dir, target_is_directory=True)
        write_pb_stub(tmp / "gen", name, message)
        try:
            os.replace(tmp, stage)
        except OSError:  # another build staged it first
            shutil.rmtree(tmp, ignore_errors=True)
    return stage / "tree", stage / "gen"


def _compile(flavor: Flavor, source: Path, includes: list[Path], deps: str, cache: Path,
             rewrite: tuple[str, str] = ("", "")) -> Path:
    """Compile one source to a cached object; ``rewrite`` maps a staged path back to the
    codec directory in error messages."""
    key = content_digest(flavor.identity(), str(source), source.read_bytes(), deps,
                  *(str(p) for p in includes))
    obj = cache / "obj" / f"{key}.o"
    if obj.exists():
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".o", dir=obj.parent)
    os.close(fd)
    command = [flavor.toolchain.path, *flavor.compile_flags(),
               *(f"-I{p}" for p in includes), "-c", str(source), "-o", tmp]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        Path(tmp).unlink(missing_ok=True)  # clang removes its output itself on failure
        output = result.stderr + result.stdout
        if rewrite[0]:
            output = output.replace(*rewrite)
        raise CompileError(source, command, output)
    os.replace(tmp, obj)
    return obj


def compile_all(jobs: list[tuple]) -> list[Path]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(_compile, *job) for job in jobs]
        return [f.result() for f in futures]  # re-raises the first CompileError in order


def codec_jobs(flavor: Flavor, codec_dir: Path, name: str, cache: Path):
    codec_dir = Path(codec_dir).resolve()
    if not codec_dir.is_dir():
        raise FileNotFoundError(f"codec directory {codec_dir} does not exist")
    tree, gen = _stage(codec_dir, name, cache)
    files = _codec_files(codec_dir)
    deps = content_digest(model_digest(), _tree_digest(files, codec_dir))
    sources = [p for p in files if p.suffix in {".cc", ".cpp"}]
    for required in (f"{name}_codec.cc", "config.cc"):
        if not (codec_dir / required).exists():
            raise FileNotFoundError(f"{codec_dir} has no {required}")
    rewrite = (str(tree / "src" / "application_protocols" / name), str(codec_dir))
    return [(flavor, src, [gen, tree, MODEL_INCLUDE], deps, cache, rewrite) for src in sources]


@dataclass(frozen=True)
class BuildInfo:
    """Written next to each library as ``<lib>.json``; read by NativeCodec."""

    factory: str
    sanitize: bool
    family: str
    compiler: str
    std: str
    target: str
    preload: list[str]  # LD_PRELOAD needed to load the library into a process (sanitizers)

    @staticmethod
    def of(library: Path) -> "BuildInfo":
        return BuildInfo(**json.loads(Path(f"{library}.json").read_text()))


def default_cache_dir() -> Path:
    return Path(os.environ.get("CODECGEN_CACHE", Path.home() / ".cache" / "codecgen"))


def build_harness(codec_dir: Path, name: str, *, compiler: str = "g++", std: str = "c++17",
                  sanitize: bool = True, target: str | None = None,
                  cache_dir: Path | None = None) -> Path:
    """Build (or reuse) the harness library for the codec in ``codec_dir``.

    :param name: the codec's directory name; its factory must be registered as
        ``aeraki.meta_protocol.codec.<name>``.
    :returns: the path of the shared library (its BuildInfo is in ``<path>.json``).
    :raises CompileError: with the compiler's first error lines.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tc = toolchain(compiler)
    target = target or default_target_name()
    flavor = Flavor(tc, std, sanitize, target, "-O1" if sanitize else "-O2")
    model_jobs = [(flavor, src, [MODEL_INCLUDE, HARNESS_DIR], model_digest(), cache)
                  for src in (*MODEL_SOURCES, *HARNESS_SOURCES)]
    objects = compile_all(codec_jobs(flavor, codec_dir, name, cache) + model_jobs)

    key = content_digest(flavor.identity(), *(o.name for o in objects))
    library = cache / "lib" / key / f"libcodecgen-{name}.so"
    if library.exists():
        return library
    tmp = atomic_write_dir(library.parent.parent)
    command = [tc.path, "-shared", "-o", str(tmp / library.name), *map(str, objects),
               *flavor.link_flags()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CompileError(library, command, result.stderr + result.stdout)
    info = BuildInfo(codec_name(name), sanitize, tc.family, tc.path, std,
                     target, tc.sanitizer_preload() if sanitize else [])
    Path(f"{tmp / library.name}.json").write_text(json.dumps(asdict(info), indent=2))
    try:
        os.replace(tmp, library.parent)
    except OSError:  # built concurrently by someone else
        shutil.rmtree(tmp, ignore_errors=True)
    return library


def compile_only(codec_dir: Path, name: str, compiler: str = "g++", std: str = "c++17",
                 target: str | None = None, cache_dir: Path | None = None) -> list[Path]:
    """Compile the codec's own sources (no harness, no sanitizers, -O2 so that flow-based
    warnings fire) under one cell of the compile matrix. Returns the object files.

    :raises CompileError: with the compiler's first error lines.
    :raises FileNotFoundError: if the compiler is not installed.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    flavor = Flavor(toolchain(compiler), std, False, target or default_target_name(), "-O2")
    return compile_all(codec_jobs(flavor, codec_dir, name, cache))
