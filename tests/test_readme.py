"""README.md's command blocks are what runs: CI's commands are the set-up block's, and the
tutorial's blocks run in order, as written, on the scaffold `codecgen new` writes.

The blocks are read by scripts/readme-commands, the one reader (scripts/fresh-machine-check
uses it too)."""

from __future__ import annotations

import json
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


def _codecgen_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose `codecgen` is this checkout run by this Python, whatever is installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "codecgen"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m codecgen.cli "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path):
    """Every marked tutorial block, in order, in an empty folder: each command exits 0; a command
    ending in `&` runs in the background (the test waits for its first line, then for its exit
    at the end)."""
    commands = readme_commands("tutorial")
    assert commands[0].startswith("codecgen new ") and len(commands) >= 8, commands
    if not _port_free(9000):
        pytest.fail("port 9000 on 127.0.0.1 is taken: the tutorial's serve/call use it", pytrace=False)
    env = _codecgen_on_path(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    outputs, background = {}, []
    try:
        for cmd in commands:
            if cmd.endswith("&"):
                proc = subprocess.Popen(["bash", "-c", cmd[:-1]], cwd=work, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                background.append((cmd, proc, proc.stdout.readline()))
                continue
            run = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, f"{cmd}: exit {run.returncode}: {run.stderr.strip()[-2000:]}"
            outputs[cmd] = run.stdout
        for cmd, proc, first in background:
            rest, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}: {first}{rest}"
            outputs[cmd] = first + rest
    finally:
        for _, proc, _ in background:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out = {cmd.split()[1] + (" cpp" if "--engine cpp" in cmd else ""): text for cmd, text in outputs.items()
           if cmd.startswith("codecgen ")}
    assert "request_id" in out["check"] or "request id" in out["check"]
    assert (work / "out" / "src" / "application_protocols" / "myrpc" / "myrpc_codec.cc").is_file()
    assert "verify myrpc: OK" in out["verify"]
    for engine in ("decode", "decode cpp"):
        (line,) = out[engine].splitlines()
        decoded = json.loads(line)
        assert decoded["request_id"] == 7 and decoded["metadata"] == {"method": "SayHello", "x-codecgen-codec": "aeraki.meta_protocol.codec.myrpc"}, decoded
    assert out["decode"] == out["decode cpp"]
    assert 'v1: Request 1 keys {"method": "SayHello"}' in out["serve"]
    answer = json.loads(out["call"])
    assert answer["message_type"] == "Response" and answer["answer"]["server"] == "v1"
    assert answer["answer"]["keys"] == {"method": "SayHello"}
