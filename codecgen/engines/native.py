"""The C++ engine: generate (or take) a codec folder, compile it into the harness, load it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from codecgen import ir
from codecgen.backends import cpp
from codecgen.errors import UserError
from codecgen.hostmodel.build import CompileError, default_cache_dir
from codecgen.hostmodel.native import NativeCodec
from codecgen.output import write_tree


def generated_codec_dir(proto: ir.ProtocolIR, target: Optional[str] = None) -> Path:
    """The generated C++ files for ``proto`` in the cache (written once per content hash)."""
    files = cpp.render(proto, target=target)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    folder = default_cache_dir() / "generated" / f"{proto.name}-{digest.hexdigest()[:16]}"
    if not folder.exists():
        write_tree(folder, files)
    return folder


def codec_folder(proto: ir.ProtocolIR, codec_dir: Optional[str | Path], target: Optional[str]) -> Path:
    if codec_dir is None:
        return generated_codec_dir(proto, target)
    folder = Path(codec_dir)
    expected = folder / f"{proto.name}_codec.cc"
    if not expected.is_file():
        raise UserError(f"--codec-dir {codec_dir}: no {proto.name}_codec.cc there "
                        f"(expected the files of src/application_protocols/{proto.name}/)")
    return folder


def native_codec(proto: ir.ProtocolIR, codec_dir: Optional[str | Path] = None, *,
                 target: Optional[str] = None, compiler: str = "g++", std: str = "c++17",
                 sanitize: bool = False, isolate: Optional[bool] = None) -> NativeCodec:
    """Compile (cached by content) and load the C++ codec of ``proto``. ``isolate``: run it
    in a worker process, so a crash ends only the worker (default: when sanitized)."""
    from codecgen.pins import get_target

    folder = codec_folder(proto, codec_dir, target)
    try:
        library = cpp_build(folder, proto.name, compiler=compiler, std=std, sanitize=sanitize,
                            target=get_target(target).name)
    except CompileError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{folder}: the codec does not compile: {first[0] if first else exc}") from None
    except FileNotFoundError as exc:
        raise UserError(f"--compiler {compiler}: not installed ({exc})") from None
    return NativeCodec(library, isolate=isolate)


def cpp_build(folder: Path, name: str, **options) -> Path:
    from codecgen.hostmodel.build import build_harness

    return build_harness(folder, name, **options)
