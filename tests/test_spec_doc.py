"""docs/spec.md, the spec-language reference, cannot go stale: every construct class the frontend
lowers, every name `codecgen` exports, every Protocol field and every member of MessageType,
ErrorType and Render is named there in `backticks`, and every ```python block is a spec that
passes `codecgen check`."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

import codecgen
from codecgen import ir, spec
from codecgen.frontend.lower import Lowerer

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
PROSE = re.sub(r"^```.*?^```$", "", DOC, flags=re.S | re.M)  # code blocks out: their fences are not spans
NAMED = set(re.findall(r"`([^`]+)`", PROSE))
WORDS = {w for text in NAMED for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)}


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC, flags=re.S | re.M)


def test_every_lowered_construct_class_is_documented():
    lowered = {name[len("_lower_"):] for name in dir(Lowerer) if name.startswith("_lower_")}
    assert lowered and not lowered - NAMED, sorted(lowered - NAMED)


def test_every_exported_name_and_protocol_field_is_documented():
    exported = {name for name in vars(codecgen) if not name.startswith("_")
                and not isinstance(getattr(codecgen, name), type(sys))}
    fields = {f.name for f in dataclasses.fields(spec.Protocol)}
    missing = (exported | fields) - WORDS
    assert not missing, sorted(missing)


@pytest.mark.parametrize("enum", [ir.MessageType, ir.ErrorType, ir.Render], ids=lambda e: e.__name__)
def test_every_enum_member_is_documented(enum):
    missing = {m.name for m in enum} - WORDS
    assert not missing, sorted(missing)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_every_python_example_passes_check(tmp_path, index):
    path = tmp_path / f"example{index}.py"
    path.write_text(_python_blocks()[index])
    out = subprocess.run([sys.executable, "-m", "codecgen.cli", "check", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_the_check_output_shown_is_what_check_prints(tmp_path):
    """The doc's `check` sample is the real output of its direction example (lines kept in order)."""
    shown = re.search(r"## What `codecgen check` prints\n\n```\n(.*?)```", DOC, flags=re.S).group(1).splitlines()
    (direction_example,) = [b for b in _python_blocks() if 'name="dirrpc"' in b]
    path = tmp_path / "dirrpc.py"
    path.write_text(direction_example)
    real = subprocess.run([sys.executable, "-m", "codecgen.cli", "check", str(path)], capture_output=True,
                          text=True, check=True).stdout.splitlines()
    it = iter(real)
    assert all(line in it for line in shown), "\n".join(real)


def test_the_exit_code_table_names_every_command():
    from codecgen.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert not commands - WORDS, sorted(commands - WORDS)
