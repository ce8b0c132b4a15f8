"""Write a set of generated files atomically: all of them, or none.

``write_tree`` adds files to a folder (``codecgen new``, ``encode -o``, build contexts);
``replace_tree`` makes an output folder codecgen owns hold exactly the generated files
(``codecgen generate``), keeping what it does not own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Union

from codecgen.errors import UserError

Content = Union[str, bytes]


def write_tree(out_dir: Union[str, Path], files: Mapping[str, Content]) -> list[Path]:
    """Write ``files`` (relative path -> content) under ``out_dir``.

    Everything is first written into a staging folder beside ``out_dir``; only
    when all of it is on disk are the files renamed into place, so a failure
    (a bad path, a full disk) leaves no half-written output.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a directory")
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise UserError(f"refusing to write outside the output folder: {rel}")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise UserError(f"-o {out}: {exc.strerror}") from None
    try:
        for rel, content in sorted(files.items()):
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
        if not out.exists():
            os.replace(stage, out)
            return [out / rel for rel in sorted(files)]
        written = []
        for rel in sorted(files):
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dest)
            written.append(dest)
        return written
    except OSError as exc:
        raise UserError(f"-o {out}: {exc.strerror or exc}") from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


# --------------------------------------------------------------------------- an output folder codecgen owns

MANIFEST = ".codecgen-manifest"
_MANIFEST_HEAD = "# the files `codecgen generate` wrote here; the next generate removes those it no longer writes\n"


def replace_tree(out_dir: Union[str, Path], files: Mapping[str, Content]) -> list[Path]:
    """Make ``out_dir`` hold ``files`` (relative path -> content), atomically.

    The new folder is built beside ``out_dir`` (same filesystem): the files, the manifest
    (``MANIFEST``: what codecgen owns there) and hard links to every foreign entry (anything the
    previous manifest does not list); then it is exchanged with ``out_dir`` in one rename. Files a
    previous generate wrote and this one does not are thereby gone; foreign files are kept; any
    failure (a file or folder in the way, a mount point inside, a full disk) leaves ``out_dir``
    as it was, and the message names the path.
    """
    out = Path(out_dir)
    _check_relative(files)
    if out.is_symlink():
        out = out.resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a directory")
    if out.is_dir() and os.path.ismount(out):
        raise UserError(f"-o {out}: is a mount point; generate into a folder inside it")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise UserError(f"-o {out}: {exc.strerror or exc}") from None
    try:
        os.chmod(stage, 0o777 & ~_umask() if not out.is_dir() else out.stat().st_mode & 0o7777)
        for rel, content in sorted(files.items()):
            _write(stage, out, rel, content)
        _write(stage, out, MANIFEST, _MANIFEST_HEAD + "".join(f"{rel}\n" for rel in sorted(files)))
        if out.is_dir():
            _keep_foreign(out, stage, set(files))
            _exchange(stage, out)
        else:
            os.rename(stage, out)
        return [out / rel for rel in sorted(files)]
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _check_relative(files: Mapping[str, Content]) -> None:
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts or rel == MANIFEST:
            raise UserError(f"refusing to write outside the output folder: {rel}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(stage: Path, out: Path, rel: str, content: Content) -> None:
    target = stage / rel
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    except OSError as exc:
        raise UserError(f"-o {out}: cannot write {out / rel}: {exc.strerror or exc}") from None


def _owned(out: Path) -> set[str]:
    """The relative paths the previous generate's manifest lists (none without one)."""
    try:
        text = (out / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise UserError(f"-o {out}: cannot read {out / MANIFEST}: {exc.strerror or exc}") from None
    return {line for line in text.splitlines() if line and not line.startswith("#")}


def _keep_foreign(out: Path, stage: Path, new: set[str]) -> None:
    """Hard-link every foreign entry of ``out`` into ``stage``; refuse one in the way of a new file."""
    owned = _owned(out)
    owned_dirs = {str(p) for rel in owned | new for p in Path(rel).parents if str(p) != "."}
    new_dirs = {str(p) for rel in new for p in Path(rel).parents if str(p) != "."}
    for root, dirs, names in os.walk(out):
        here = Path(root)
        rel_root = here.relative_to(out)
        for d in [d for d in dirs if (here / d).is_symlink()]:
            dirs.remove(d)  # a link to a folder is an entry of its own, kept like a file
            names.append(d)
        for d in list(dirs):
            rel = str(rel_root / d)
            if os.path.ismount(here / d):
                raise UserError(f"-o {out}: {here / d} is a mount point; codecgen cannot swap the folder "
                                f"holding it")
            if rel in new:
                if _has_foreign(here / d, rel, owned):
                    raise UserError(f"-o {out}: a directory is in the way of {here / d}")
                dirs.remove(d)
            elif rel not in owned_dirs and not os.listdir(here / d):
                (stage / rel).mkdir(parents=True, exist_ok=True)  # a foreign empty folder
        for name in names:
            rel = str(rel_root / name)
            if rel == MANIFEST or rel in owned or rel in new:
                continue  # ours: written anew, or gone (a foreign file at a new file's path is replaced)
            if rel in new_dirs:
                raise UserError(f"-o {out}: {here / name} is in the way (a file where codecgen writes a folder)")
            target = stage / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(here / name, target, follow_symlinks=False)
            except OSError as exc:
                raise UserError(f"-o {out}: cannot keep {here / name}: {exc.strerror or exc}") from None


def _has_foreign(folder: Path, rel: str, owned: set[str]) -> bool:
    for root, _, names in os.walk(folder):
        for name in names:
            if str(Path(rel) / Path(root).relative_to(folder) / name) not in owned:
                return True
    return False


def _exchange(stage: Path, out: Path) -> None:
    """Swap ``stage`` and ``out`` (renameat2 RENAME_EXCHANGE: atomic); else two renames."""
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(stage), at_fdcwd, os.fsencode(out), rename_exchange) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise UserError(f"-o {out}: cannot swap in the new output: {os.strerror(err)}")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    try:
        os.rename(out, old / "out")
        try:
            os.rename(stage, out)
        except OSError:
            os.rename(old / "out", out)
            raise
        os.rename(old / "out", stage)  # the caller removes the old output with the stage
    except OSError as exc:
        raise UserError(f"-o {out}: cannot swap in the new output: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(old, ignore_errors=True)
