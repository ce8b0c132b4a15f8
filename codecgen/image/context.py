"""Write a self-contained Docker build context for a MetaProtocol proxy image.

Layout of the context (every byte a function of the inputs: sorted, no timestamps)::

    Dockerfile              builder (toolchain, meta-protocol-proxy, bazel) + proxyv2 stage
    .dockerignore           sends only the files below to the engine
    README.md               how to build it by hand
    patch_root_build.py     adds the codecs to the root envoy_cc_binary (runs in the builder)
    codecs/<name>/...       each codec's generated files (BUILD, <name>_codec.proto, ...); a
                            codec replacing a built-in (replaces_builtin=True) is copied over
                            the built-in's folder after that folder is removed
    .codecgen-context       marker: this folder may be replaced by the next run

The folder is written into a temporary sibling and renamed into place, so a
failure leaves the previous context (or nothing) behind, never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Collection, Dict, List, Mapping, Union

import jinja2

from codecgen.builtins import collision
from codecgen.errors import UserError
from codecgen.naming import check_token, cpp_files
from codecgen.pins import Target, get_target

__all__ = ["ContextError", "MARKER", "BUILDER_HOME", "BUILDER_USER",
           "BUILDER_UID", "ENVOY_IN_BUILDER", "ENVOY_IN_IMAGE", "codec_files",
           "render_dockerfile", "render_context", "write_context", "template_env"]

MARKER = ".codecgen-context"
BUILDER_USER = "codecgen"
BUILDER_UID = 4242
BUILDER_HOME = "/home/codecgen"
ENVOY_IN_BUILDER = f"{BUILDER_HOME}/out/envoy"
ENVOY_IN_IMAGE = "/usr/local/bin/envoy"
# Packages the Dockerfile needs in the builder besides the target's own list.
BASE_APT_PACKAGES = ("ca-certificates", "git", "python3")

_HERE = Path(__file__).resolve().parent


class ContextError(UserError):
    """Bad codec folders or an output folder codecgen must not replace."""


def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _resolve_target(target: Union[str, Target, None]) -> Target:
    return target if isinstance(target, Target) else get_target(target)


def codec_files(name: str, folder: Path) -> Dict[str, bytes]:
    """The files of one codec folder (relative posix path -> bytes), checked."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContextError(f"codec {name}: {folder} is not a directory")
    missing = [f for f in cpp_files(name) if not (folder / f).is_file()]
    if missing:
        raise ContextError(f"codec {name}: {folder} lacks {', '.join(missing)}")
    files: Dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_symlink():
            raise ContextError(f"codec {name}: {path} is a symlink; copy the file instead")
        if path.is_file():
            files[rel.as_posix()] = path.read_bytes()
    return files


def _check_names(names: List[str], t: Target, replaces: Collection[str]) -> List[str]:
    """The sorted names of the built-ins the image replaces; refuses any other collision."""
    if not names:
        raise ContextError("no codecs given: an image needs at least one")
    for name in names:
        why = check_token(name)
        if why:
            raise ContextError(why)
        builtin = collision(name, t)
        if builtin is not None and name not in replaces:
            raise ContextError(
                f"codec {name}: meta-protocol-proxy {t.proxy_tag} already has a built-in codec "
                f"{builtin} (built-ins: {', '.join(t.builtin_codecs)}); rename the protocol, or set "
                f"replaces_builtin=True in its spec (--replaces-builtin {name} for --codec-dir)")
    for name in sorted(replaces):
        if name not in names:
            raise ContextError(f"--replaces-builtin {name}: no codec {name} is given")
        if name not in t.builtin_codecs:
            raise ContextError(f"codec {name} is marked as replacing a built-in, but meta-protocol-proxy "
                               f"{t.proxy_tag} has no built-in codec {name} (built-ins: "
                               f"{', '.join(t.builtin_codecs)})")
    return sorted(replaces)


def _render(names: List[str], t: Target, template: str, replaces: List[str]) -> str:
    return template_env().get_template(template).render(
        t=t,
        codecs=names,
        replaces=replaces,
        labels=[t.codec_config_label(n) for n in names],
        apt_packages=sorted(set(BASE_APT_PACKAGES) | set(t.builder_apt_packages)),
        user=BUILDER_USER,
        uid=BUILDER_UID,
        home=BUILDER_HOME,
    )


def render_dockerfile(names: List[str], target: Union[str, Target, None] = None,
                      replaces: Collection[str] = ()) -> str:
    """The Dockerfile alone (its FROM lines depend only on the target)."""
    t = _resolve_target(target)
    names = sorted(names)
    return _render(names, t, "Dockerfile.j2", _check_names(names, t, replaces))


def render_context(codecs: Mapping[str, Path], target: Union[str, Target, None] = None,
                   replaces: Collection[str] = ()) -> Dict[str, bytes]:
    """Every file of the context (relative posix path -> bytes).  Pure and deterministic.
    ``replaces``: the codecs that take the place of the built-in codec of the same name."""
    t = _resolve_target(target)
    names = sorted(codecs)
    replaced = _check_names(names, t, replaces)
    files: Dict[str, bytes] = {}
    for name in names:
        for rel, data in codec_files(name, Path(codecs[name])).items():
            files[f"codecs/{name}/{rel}"] = data
    for out, template in (("Dockerfile", "Dockerfile.j2"),
                          (".dockerignore", "dockerignore.j2"),
                          ("README.md", "README.md.j2"),
                          ("patch_root_build.py", "patch_root_build.py.j2")):
        files[out] = _render(names, t, template, replaced).encode("utf-8")
    files[MARKER] = (f"# written by codecgen; this folder is replaced on the next run\n"
                     f"target={t.name}\ncodecs={','.join(names)}\n"
                     f"replaces-builtin={','.join(replaced)}\n").encode("utf-8")
    return dict(sorted(files.items()))


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ContextError(f"{out_dir} exists and is not a directory")
    if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise ContextError(f"{out_dir} is not empty and was not written by codecgen "
                           f"(no {MARKER}); choose another folder")


def write_context(codecs: Mapping[str, Path], out_dir: Path,
                  target: Union[str, Target, None] = None,
                  replaces: Collection[str] = ()) -> List[Path]:
    """Write the build context for ``codecs`` (protocol name -> codec folder) to ``out_dir``;
    ``replaces`` as in :func:`render_context`.

    Returns the written files (sorted).  ``out_dir`` is replaced as a whole; it must
    be absent, empty, or a previous codecgen context.
    """
    out_dir = Path(out_dir).absolute()
    files = render_context(codecs, target, replaces)
    _check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    old = None
    try:
        os.chmod(tmp, 0o755)
        for rel, data in files.items():
            _write_file(tmp / rel, data)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rmdir(old)
            os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except BaseException:
            if old is not None:
                os.rename(old, out_dir)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [out_dir / rel for rel in files]
