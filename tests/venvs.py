"""Virtualenvs for tests that install a wheel: made by the Python the tests run in (sys.executable),
never by a base interpreter that may lack codecgen's dependencies.

``venv_seeing_this_environment`` gives a fresh virtualenv (no --system-site-packages: inside a
virtualenv that flag would reach the base interpreter's packages, not this environment's) whose
site folder points, by a .pth file, at this environment's own site-packages: a wheel installed
into it is found first, its dependencies come from here, nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path


def make_venv(path: Path) -> Path:
    """A fresh virtualenv made by this Python; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def this_environment_site_dirs() -> list[str]:
    """The site-packages of the environment this test runs in (a virtualenv's, or the base's)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def venv_seeing_this_environment(path: Path) -> Path:
    py = make_venv(path)
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "this-environment.pth").write_text("".join(d + "\n" for d in this_environment_site_dirs()))
    return py


def console_script(name: str):
    """A console script of this environment's packages (its scripts folder: a virtualenv's bin,
    even when that is not on PATH), else the one on PATH, else None."""
    here = Path(sysconfig.get_path("scripts")) / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)
