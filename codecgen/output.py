"""Write a set of generated files atomically: all of them, or none."""

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
