"""README.md's command blocks are what runs: CI's commands are the set-up block's, and the
tutorial's blocks run in order, as written, on the scaffold `codecgen new` writes.

The blocks are read by scripts/readme-commands, the one reader (scripts/fresh-machine-check
uses it too)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands(name: str) -> list[str]:
    out = subprocess.run([ROOT / "scripts" / "readme-commands", name, ROOT / "README.md"],
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_ci_runs_exactly_the_readme_setup_commands():
    setup = readme_commands("setup")
    assert len(setup) == 2, setup
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")
                and not line.startswith(("set ", "cd "))]
    assert commands == setup


def test_readme_commands_reads_only_marked_sh_blocks(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```sh\nnot this\n```\n<!-- commands: setup -->\n```sh\n"
                      "# a comment line\nfirst --flag   # trailing comment\n\n  second 'a # b'\n```\n"
                      "<!-- commands: setup -->\ntext\n```sh\nnot marked any more\n```\n")
    out = subprocess.run([ROOT / "scripts" / "readme-commands", "setup", readme],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["first --flag", "second 'a # b'"]
