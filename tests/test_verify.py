"""The generated C++ codec: compile matrix, `codecgen verify`, and mutants that verify must catch."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from codecgen.backends import cpp
from codecgen.cli import main
from codecgen.frontend import load
from codecgen.hostmodel.build import compile_only
from codecgen.output import write_tree
from conftest import PROTOCOLS, ROOT



def _generate(spec: Path, out: Path) -> Path:
    proto = load(spec)
    folder = out / proto.name
    write_tree(folder, cpp.render(proto))
    return folder


@pytest.mark.parametrize("spec", PROTOCOLS, ids=lambda p: p.stem)
def test_verify_passes_for_every_protocol(spec, capsys):
    assert main(["verify", str(spec), "--cases", "1500"]) == 0
    out = capsys.readouterr().out
    assert "OK: the C++ codec and the reference codec agree on every case" in out
    assert "1500 cases" in out


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
@pytest.mark.parametrize("std", ["c++17", "c++20"])
@pytest.mark.parametrize("spec", PROTOCOLS, ids=lambda p: p.stem)
def test_generated_codec_compiles_with_envoy_warnings(spec, compiler, std, tmp_path):
    folder = _generate(spec, tmp_path)
    objects = compile_only(folder, load(spec).name, compiler=compiler, std=std, cache_dir=tmp_path / "cache")
    assert objects and all(o.exists() for o in objects)


def _mutant(tmp_path: Path, spec: str, pattern: str, replacement: str) -> Path:
    folder = _generate(ROOT / "protocols" / spec, tmp_path)
    source = next(folder.glob("*_codec.cc"))
    text = source.read_text()
    mutated, count = re.subn(pattern, replacement, text, count=1, flags=re.S)
    assert count == 1, f"mutation pattern not found in {source.name}: {pattern}"
    source.write_text(mutated)
    return folder


MUTANTS = {
    # A multi-byte field read in the wrong byte order.
    "wrong-byte-order": ("awesomerpc.py", r"frame\.pack_flow = buffer\.peekBEInt", "frame.pack_flow = buffer.peekLEInt"),
    # The length check before the body removed: Done before the frame is whole.
    "missing-length-check": ("awesomerpc.py", r'if \(!need\(buffer, cursor, (size_\d+), kMaxFrameSize, "frame\.body"\)\) \{',
                             r"if (false) {"),
    # encode forgets to drain the original header before moving the body out of it.
    "forgotten-drain": ("meshrpc.py", r"source->buffer\.drain\(frame\.body_offset - source->consumed\);",
                        ""),
    # The error reply does not echo the request id.
    "error-reply-without-request-id": ("meshrpc.py",
                                       r"void MeshrpcCodec::onError\(.*?\n  frame\.request_id = [^\n]*\n",
                                       None),
    # The maximum frame size check loosened by one byte too many (an off-by-one on the limit).
    "oversize-accepted": ("awesomerpc.py", r"constexpr uint64_t kMaxFrameSize = 16777216;",
                          "constexpr uint64_t kMaxFrameSize = 4294967295;"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_verify_catches_mutant(name, tmp_path, capsys):
    spec, pattern, replacement = MUTANTS[name]
    if replacement is None:  # delete the matched line but keep the function header
        folder = _generate(ROOT / "protocols" / spec, tmp_path)
        source = next(folder.glob("*_codec.cc"))
        text = source.read_text()
        match = re.search(pattern, text, flags=re.S)
        assert match, pattern
        line_start = text.rfind("\n", 0, match.end() - 1) + 1
        source.write_text(text[:line_start] + text[match.end():])
    else:
        folder = _mutant(tmp_path, spec, pattern, replacement)
    out_dir = tmp_path / "repro"
    code = main(["verify", str(ROOT / "protocols" / spec), "--codec-dir", str(folder), "--no-sanitize",
                 "--cases", "3000", "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "MISMATCH" in out
    repros = list(out_dir.glob("*.json"))
    assert len(repros) == 1
    # The reproducer replays to the same failure.
    assert main(["verify", str(ROOT / "protocols" / spec), "--codec-dir", str(folder), "--no-sanitize",
                 "--replay", str(repros[0]), "--out", str(out_dir)]) == 1


def test_unmodified_codec_dir_passes(tmp_path, capsys):
    folder = _generate(ROOT / "protocols" / "meshrpc.py", tmp_path)
    assert main(["verify", str(ROOT / "protocols" / "meshrpc.py"), "--codec-dir", str(folder),
                 "--no-sanitize", "--cases", "500"]) == 0


def test_codec_dir_that_does_not_compile_is_one_line_error(tmp_path, capsys):
    folder = _mutant(tmp_path, "awesomerpc.py", r"return MetaProtocolProxy::DecodeStatus::Done;",
                     "return MetaProtocolProxy::DecodeStatus::Done  // missing semicolon")
    code = main(["verify", str(ROOT / "protocols" / "awesomerpc.py"), "--codec-dir", str(folder), "--no-sanitize"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("codecgen: error:")]
    assert code == 2
    assert len(errors) == 1 and "does not compile" in errors[0] and "awesomerpc_codec.cc:" in errors[0]
    assert "Traceback" not in err


OPTIONAL_AND_SHARED = {
    # A routing key on an optional scalar: absent -> no key, on both engines.
    "iftest": '''
from construct import Struct, Int8ub, Int16ub, If, Bytes, this
from codecgen import Protocol
frame = Struct(
    "flags" / Int8ub,
    "tenant" / If(this.flags & 1, Int16ub),
    "name_len" / Int8ub,
    "name" / If(this.name_len > 0, Bytes(this.name_len)),
)
PROTOCOL = Protocol(name="iftest", frame=frame, routing_keys={"tenant": "tenant", "name": "name"},
                    error_reply={"flags": 0})
''',
    # A routing key declared in two Switch cases is present when either case is taken.
    "swtest": '''
from construct import Struct, Int8ub, Int16ub, Switch, PascalString, this
from codecgen import Protocol
frame = Struct(
    "kind" / Int8ub,
    "payload" / Switch(this.kind, {
        1: Struct("topic" / PascalString(Int8ub, "utf8"), "x" / Int8ub),
        2: Struct("topic" / PascalString(Int8ub, "utf8")),
    }, default=Struct("other" / Int16ub)),
)
PROTOCOL = Protocol(name="swtest", frame=frame, routing_keys={"topic": "payload.topic"},
                    error_reply={"kind": 9})
''',
}


@pytest.mark.parametrize("name", sorted(OPTIONAL_AND_SHARED))
def test_conditional_routing_keys_agree(name, tmp_path, capsys):
    spec = tmp_path / f"{name}.py"
    spec.write_text(OPTIONAL_AND_SHARED[name])
    assert main(["verify", str(spec), "--no-sanitize", "--cases", "2000", "--out", str(tmp_path)]) == 0, \
        capsys.readouterr().out
