"""clang-format in Envoy style, applied to generated C++ when the pinned formatter is installed.

The generated code is valid and readable without it; formatting is a last,
optional pass so that output does not depend on whichever clang-format
happens to be on a machine: only major version ``PINNED_MAJOR`` is used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Optional

PINNED_MAJOR = 16
STYLE_FILE = Path(__file__).with_name("envoy.clang-format")


@lru_cache(maxsize=1)
def formatter() -> Optional[str]:
    for name in (f"clang-format-{PINNED_MAJOR}", "clang-format"):
        exe = shutil.which(name)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"version (\d+)\.", out)
        if match and int(match.group(1)) == PINNED_MAJOR:
            return exe
    return None


def clang_format(text: str, file_name: str) -> str:
    """``text`` formatted in Envoy style, or unchanged when clang-format 16 is missing."""
    exe = formatter()
    if exe is None:
        return text
    proc = subprocess.run(
        [exe, f"--style=file:{STYLE_FILE}", f"--assume-filename={file_name}"],
        input=text, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"clang-format failed on {file_name}: {proc.stderr.strip()}")
    return proc.stdout
