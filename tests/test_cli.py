"""The ``codecgen`` command line: the happy paths and every kind of bad input.

The real program runs in a subprocess (``python -m codecgen.cli``) where the
process boundary matters (exit codes, no traceback, binary stdout); the rest
calls ``codecgen.cli.main([...])`` in-process, which is the same code and ~20x
faster.  Contract (cli.py docstring): bad input -> exactly one stderr line
``codecgen: error: ...`` naming the culprit, exit 2; bad data -> exit 1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codecgen import cli
from codecgen.scaffold import scaffold
from conftest import ROOT

MESHRPC = str(ROOT / "protocols" / "meshrpc.py")
AWESOMERPC = str(ROOT / "protocols" / "awesomerpc.py")
FRAME_KEYS = {"message_type", "request_id", "response_status", "frame_size", "header_size", "body_size",
              "operation_name", "metadata"}
CPP_FILES = {"BUILD", "config.cc", "config.h", "{n}_codec.cc", "{n}_codec.h", "{n}_codec.proto"}
K8S_FILES = {"applicationprotocol.yaml", "destinationrule.yaml", "metarouter.yaml", "service.yaml",
             "serviceentry.yaml"}

MESH_LINES = [
    {"request_id": 5, "header": {"service": "svc", "method": "Get",
                                 "headers": [{"key": "Tenant", "value": "blue"}]}, "body": "hello"},
    {"flags": {"response": True}, "request_id": 5, "header": {"service": "svc", "method": "Get", "status": 404}},
    {"flags": {"heartbeat": True}, "request_id": 6},
]


# --------------------------------------------------------------------------- helpers (each asserts)


def run(*args: str, cwd=None, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """The real CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "codecgen.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def call(capsys, *args: str) -> tuple[int, str, str]:
    """``codecgen.cli.main`` in-process: (exit code, stdout, stderr)."""
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def rc_err(capsys, *args) -> tuple[int, str]:
    rc, _, err = call(capsys, *args)
    return rc, err


def assert_ok(rc: int, err) -> None:
    assert rc == 0, f"exit {rc}: {err}"


def assert_user_error(rc: int, err, culprit: str) -> str:
    """Exit 2, and stderr is exactly one line ``codecgen: error: ...`` matching ``culprit``."""
    err = err.decode() if isinstance(err, bytes) else err
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"want one stderr line, got {lines}"
    assert lines[0].startswith("codecgen: error: ")
    assert re.search(culprit, lines[0]), f"{culprit!r} not in {lines[0]!r}"
    return lines[0]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def assert_frames(objs: list[dict], count: int) -> None:
    assert len(objs) >= count
    for obj in objs[:count]:
        assert set(obj) == FRAME_KEYS, f"unexpected keys {sorted(obj)}"
        assert obj["frame_size"] == obj["header_size"] + obj["body_size"]


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def expected_tree(name: str) -> set[str]:
    return ({f"python/{name}_codec.py"} | {f"k8s/{f}" for f in K8S_FILES}
            | {f"src/application_protocols/{name}/{f.format(n=name)}" for f in CPP_FILES}
            | {f"wireshark/{name}.lua"})


def write_jsonl(path: Path, objs: list) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def encode_file(capsys, tmp_path: Path, spec: str, objs: list) -> bytes:
    out = tmp_path / "frames.bin"
    rc, _, err = call(capsys, "encode", spec, write_jsonl(tmp_path / "in.jsonl", objs), "-o", out)
    assert_ok(rc, err)
    return out.read_bytes()


# --------------------------------------------------------------------------- new -> check -> generate


def test_new_check_generate_a_fresh_name(tmp_path):
    r = run("new", "acmerpc", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert (tmp_path / "acmerpc.py").is_file()
    r = run("check", "acmerpc.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"codec aeraki.meta_protocol.codec.acmerpc" in r.stdout
    r = run("generate", "acmerpc.py", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert files_under(tmp_path / "out") == expected_tree("acmerpc") | {".codecgen-manifest"}
    assert len(r.stdout.splitlines()) == len(expected_tree("acmerpc"))


@pytest.mark.parametrize("name", ["a", "x9", "zz1rpc"])
def test_scaffold_passes_check_for_any_valid_name(capsys, tmp_path, name):
    spec = tmp_path / f"{name}.py"
    rc, out, err = call(capsys, "new", name, "-o", spec)
    assert_ok(rc, err)
    assert f"wrote {spec}" in out
    rc, out, err = call(capsys, "check", spec)
    assert_ok(rc, err)
    for role in ("request id      request_id", "routing key     method", "header map      header.headers",
                 "error reply", "heartbeat reply", f"operation name  {name}/{{header.method}}"):
        assert role in out, f"{role!r} missing from check output"


def test_scaffold_comments_every_role():
    text = scaffold("acmerpc")
    lines = text.splitlines()
    start = lines.index("PROTOCOL = Protocol(")
    roles = ("request_id", "message_type", "heartbeat", "response_error", "routing_keys", "operation_name",
             "headers", "error_reply", "max_frame_size")
    for role in roles:
        at = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(role + "="))
        assert lines[at - 1].strip().startswith("#"), f"role {role} has no comment above it"
    for taught in ("putString", "MetaRouter", "requestMutation", "onError", "outlier", "lower-case",
                   "RouteNotFound", "x-envoy-peer-metadata", "tcp-metaprotocol-acmerpc-"):
        assert taught in text, f"the scaffold does not explain {taught}"


def test_scaffold_docstring_example_encodes_and_decodes(capsys, tmp_path):
    spec = tmp_path / "acmerpc.py"
    spec.write_text(scaffold("acmerpc"))
    example = next(line.strip() for line in scaffold("acmerpc").splitlines() if line.strip().startswith('{"'))
    frames = encode_file(capsys, tmp_path, str(spec), [json.loads(example)])
    rc, out, err = call(capsys, "decode", spec, tmp_path / "frames.bin")
    assert_ok(rc, err)
    (frame,) = json_lines(out)
    # Every decoded request also carries codecgen's mark (ir.CODEC_ID_KEY), the codec's own name.
    assert frame["metadata"] == {"method": "SayHello", "tenant": "blue",
                                 "x-codecgen-codec": "aeraki.meta_protocol.codec.acmerpc"}
    assert frame["operation_name"] == "acmerpc/SayHello" and frame["frame_size"] == len(frames)


def test_new_refuses_to_overwrite(capsys, tmp_path):
    spec = tmp_path / "acmerpc.py"
    spec.write_text("# mine\n")
    assert_user_error(*rc_err(capsys, "new", "acmerpc", "-o", spec), culprit=r"already exists")
    assert spec.read_text() == "# mine\n"


def test_generate_writes_python_k8s_and_cpp(capsys, tmp_path):
    rc, out, err = call(capsys, "generate", MESHRPC, "-o", tmp_path / "out")
    assert_ok(rc, err)
    assert files_under(tmp_path / "out") == expected_tree("meshrpc") | {".codecgen-manifest"}
    assert len(list((tmp_path / "out/src/application_protocols/meshrpc").iterdir())) == 6


# --------------------------------------------------------------------------- decode / encode


def test_decode_prints_one_json_line_per_frame(capsys, tmp_path):
    encode_file(capsys, tmp_path, MESHRPC, MESH_LINES)
    rc, out, err = call(capsys, "decode", MESHRPC, tmp_path / "frames.bin")
    assert_ok(rc, err)
    objs = json_lines(out)
    assert len(objs) == 3
    assert_frames(objs, 3)
    assert [o["message_type"] for o in objs] == ["Request", "Response", "Heartbeat"]
    assert [o["request_id"] for o in objs] == [5, 5, 6]
    assert objs[0]["metadata"] == {"service": "svc", "method": "Get", "tenant": "blue",
                                   "x-codecgen-codec": "aeraki.meta_protocol.codec.meshrpc"}
    assert objs[0]["body_size"] == 5 and objs[0]["operation_name"] == "svc/Get"
    assert objs[1]["response_status"] == "Error"


@pytest.mark.parametrize("cut", [1, 7, 20])
def test_decode_cut_stream_reports_incomplete(capsys, tmp_path, cut):
    data = encode_file(capsys, tmp_path, MESHRPC, MESH_LINES[:2])
    (tmp_path / "cut.bin").write_bytes(data[:-cut])
    rc, out, err = call(capsys, "decode", MESHRPC, tmp_path / "cut.bin")
    assert_ok(rc, err)
    objs = json_lines(out)
    assert_frames(objs, 1)
    assert len(objs) == 2 and objs[-1] == {"incomplete": len(data) - cut - objs[0]["frame_size"]}


def test_decode_garbage_prints_good_frames_then_error(capsys, tmp_path):
    data = encode_file(capsys, tmp_path, MESHRPC, MESH_LINES[:2])
    (tmp_path / "bad.bin").write_bytes(data + b"XX" + data)
    rc, out, err = call(capsys, "decode", MESHRPC, tmp_path / "bad.bin")
    assert rc == 1 and err == ""
    objs = json_lines(out)
    assert_frames(objs, 2)
    assert len(objs) == 3 and set(objs[2]) == {"error"} and "frame.magic" in objs[2]["error"]


def test_encode_decode_round_trip_through_pipes():
    lines = "".join(json.dumps(o) + "\n" for o in MESH_LINES) + "\n"  # blank lines are skipped
    enc = run("encode", MESHRPC, "-", stdin=lines.encode())
    assert enc.returncode == 0 and enc.stderr == b"", enc.stderr
    assert enc.stdout.startswith(b"MR\x01")
    dec = run("decode", MESHRPC, "-", stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    objs = json_lines(dec.stdout.decode())
    assert_frames(objs, 3)
    assert len(objs) == 3 and sum(o["frame_size"] for o in objs) == len(enc.stdout)


def test_encode_awesomerpc_recomputes_the_length(capsys, tmp_path):
    data = encode_file(capsys, tmp_path, AWESOMERPC, [{"pack_flow": 9, "req_cmd": 3, "body": "abcd"}])
    assert len(data) == 17 and int.from_bytes(data[5:9], "big") == 17
    rc, out, err = call(capsys, "decode", AWESOMERPC, tmp_path / "frames.bin", "--direction", "response")
    assert_ok(rc, err)
    (obj,) = json_lines(out)
    assert obj["metadata"] == {"cmd": "3"} and obj["message_type"] == "Response" and obj["request_id"] == 9


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def specs(tmp_path) -> Path:
    (tmp_path / "syntax.py").write_text("from codecgen import Protocol\nx = (\n")
    (tmp_path / "boom.py").write_text("from codecgen import Protocol\n\nPROTOCOL = undefined_name\n")
    (tmp_path / "noproto.py").write_text("X = 1\n")
    (tmp_path / "refused.py").write_text(
        "from construct import CString, Int8ub, Struct\nfrom codecgen import Protocol\n"
        "PROTOCOL = Protocol(name='refused', frame=Struct('a' / Int8ub, 's' / CString('utf8')))\n")
    (tmp_path / "badjson.jsonl").write_text('{"request_id": 1}\n{not json\n')
    write_jsonl(tmp_path / "unknown.jsonl", [{"request_idx": 1}])
    write_jsonl(tmp_path / "nested.jsonl", [{"header": {"nope": 1}}])
    write_jsonl(tmp_path / "type.jsonl", [{"header": {"status": "x"}}])
    write_jsonl(tmp_path / "list.jsonl", [[1]])
    return tmp_path


BAD_INPUT = [
    ("missing-spec", ["check", "{d}/missing.py"], r"missing\.py: no such spec file"),
    ("syntax-error", ["check", "{d}/syntax.py"], r"syntax\.py.*SyntaxError"),
    ("spec-raises", ["check", "{d}/boom.py"], r"boom\.py:3: NameError: name 'undefined_name' is not defined"),
    ("no-protocol", ["check", "{d}/noproto.py"], r"noproto\.py: the module must define PROTOCOL"),
    ("refused-construct", ["check", "{d}/refused.py"], r"refused: frame\.s: only PascalString .*NullTerminated"),
    ("refused-on-generate", ["generate", "{d}/refused.py", "-o", "{d}/out"], r"refused: frame\.s: "),
    ("unknown-flag", ["check", "--bogus", MESHRPC], r"unrecognized arguments: --bogus"),
    ("unknown-command", ["frobnicate"], r"invalid choice: 'frobnicate'"),
    ("missing-required-flag", ["generate", MESHRPC], r"-o/--output"),
    ("bad-direction", ["decode", MESHRPC, "--direction", "sideways"], r"--direction: invalid choice: 'sideways'"),
    ("missing-input", ["decode", MESHRPC, "{d}/nothing.bin"], r"nothing\.bin: no such file"),
    ("bad-json-line", ["encode", MESHRPC, "{d}/badjson.jsonl", "-o", "{d}/o.bin"], r"badjson\.jsonl:2: not JSON"),
    ("unknown-field", ["encode", MESHRPC, "{d}/unknown.jsonl", "-o", "{d}/o.bin"],
     r"unknown\.jsonl:1: no field 'request_idx' \(fields: magic, version, flags, request_id, header, body\)"),
    ("unknown-nested-field", ["encode", MESHRPC, "{d}/nested.jsonl", "-o", "{d}/o.bin"],
     r"nested\.jsonl:1\.header: no field 'nope'"),
    ("wrong-type", ["encode", MESHRPC, "{d}/type.jsonl", "-o", "{d}/o.bin"],
     r"type\.jsonl:1\.header\.status: expected an integer"),
    ("not-an-object", ["encode", MESHRPC, "{d}/list.jsonl", "-o", "{d}/o.bin"], r"list\.jsonl:1: expected an object"),
    ("new-bad-name", ["new", "Acme"], r"NAME: protocol name 'Acme' must match"),
    ("new-underscore", ["new", "acme_rpc"], r"NAME: protocol name 'acme_rpc' contains '_'"),
]


@pytest.mark.parametrize("args,culprit", [pytest.param(a, c, id=i) for i, a, c in BAD_INPUT])
def test_bad_input_is_one_line_exit_2(capsys, specs, args, culprit):
    rc, out, err = call(capsys, *[a.format(d=specs) for a in args])
    assert_user_error(rc, err, culprit)
    assert out == ""
    assert not (specs / "o.bin").exists() and not (specs / "out").exists()


@pytest.mark.parametrize("case", ["syntax-error", "refused-construct", "unknown-flag", "bad-json-line"])
def test_bad_input_in_the_real_process(specs, case):
    args, culprit = next((a, c) for i, a, c in BAD_INPUT if i == case)
    r = run(*[a.format(d=specs) for a in args])
    assert_user_error(r.returncode, r.stderr, culprit)


def test_unknown_bit_field_in_json_is_refused(capsys, specs):
    write_jsonl(specs / "bits.jsonl", [{"flags": {"nope": 1}}])
    rc, _, err = call(capsys, "encode", MESHRPC, specs / "bits.jsonl", "-o", specs / "o.bin")
    assert_user_error(rc, err, r"bits\.jsonl:1\.flags: no field 'nope'")


def test_out_of_range_value_names_the_field(capsys, specs):
    write_jsonl(specs / "range.jsonl", [{"header": {"status": 70000}}])
    rc, _, err = call(capsys, "encode", MESHRPC, specs / "range.jsonl", "-o", specs / "o.bin")
    assert_user_error(rc, err, r"range\.jsonl:1.*header\.status")


# --------------------------------------------------------------------------- atomic generate


def _no_staging(parent: Path) -> None:
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".out.")], "staging folder left behind"


def test_failed_generate_leaves_no_output_folder(capsys, specs):
    assert_user_error(*rc_err(capsys, "generate", specs / "refused.py", "-o", specs / "out"), culprit="refused")
    assert not (specs / "out").exists()
    _no_staging(specs)


def test_failed_generate_leaves_an_existing_folder_untouched(capsys, specs):
    out = specs / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    assert_user_error(*rc_err(capsys, "generate", specs / "refused.py", "-o", out), culprit="refused")
    assert files_under(out) == {"keep.txt"} and (out / "keep.txt").read_text() == "old"
    _no_staging(specs)


def test_generate_failing_mid_write_leaves_nothing(capsys, tmp_path, monkeypatch):
    written = []
    real = Path.write_bytes

    def flaky(self, data):
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(self)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    rc, out, err = call(capsys, "generate", MESHRPC, "-o", tmp_path / "out")
    assert_user_error(rc, err, r"out: cannot write .*/out/\S+: No space left on device")
    assert len(written) == 3 and not (tmp_path / "out").exists()
    _no_staging(tmp_path)


def test_generate_onto_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "out").write_text("x")
    assert_user_error(*rc_err(capsys, "generate", MESHRPC, "-o", tmp_path / "out"), culprit="not a directory")
    assert (tmp_path / "out").read_text() == "x"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in folder.rglob("*")}


def _generated(tmp_path: Path, capsys) -> Path:
    out = tmp_path / "out"
    assert_ok(*call(capsys, "generate", MESHRPC, "-o", out)[::2])
    return out


@pytest.mark.parametrize("in_the_way, culprit", [
    ("src", r"out/src is in the way \(a file where codecgen writes a folder\)"),
    ("k8s/service.yaml/", r"a directory is in the way of \S*out/k8s/service\.yaml"),
])
def test_generate_with_something_in_the_way_leaves_the_output_untouched_and_names_it(
        capsys, tmp_path, in_the_way, culprit):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("foreign")
    if in_the_way.endswith("/"):
        (out / in_the_way / "note.txt").parent.mkdir(parents=True)
        (out / in_the_way / "note.txt").write_text("foreign")
    else:
        (out / in_the_way).write_text("foreign")
    before = _snapshot(out)
    assert_user_error(*rc_err(capsys, "generate", MESHRPC, "-o", out), culprit=culprit)
    assert _snapshot(out) == before
    _no_staging(tmp_path)


def test_regenerate_removes_what_it_no_longer_writes_and_keeps_foreign_files(capsys, tmp_path):
    out = _generated(tmp_path, capsys)
    manifest = (out / ".codecgen-manifest").read_text().splitlines()
    assert "k8s/metarouter.yaml" in manifest and ".codecgen-manifest" not in manifest
    # a file an earlier generate wrote (listed), and files of the user's (not listed)
    (out / "k8s" / "old.yaml").write_text("stale")
    (out / ".codecgen-manifest").write_text("\n".join(manifest + ["k8s/old.yaml"]) + "\n")
    (out / "k8s" / "mine.yaml").write_text("foreign")
    (out / "notes").mkdir()
    (out / "notes" / "todo.md").write_text("foreign")
    (out / "empty").mkdir()
    (out / "link").symlink_to("notes")
    (out / "python" / "meshrpc_codec.py").write_text("edited by hand")
    assert_ok(*call(capsys, "generate", MESHRPC, "-o", out)[::2])
    assert not (out / "k8s" / "old.yaml").exists()
    assert (out / "k8s" / "mine.yaml").read_text() == "foreign"
    assert (out / "notes" / "todo.md").read_text() == "foreign" and (out / "empty").is_dir()
    assert os.readlink(out / "link") == "notes"
    assert (out / "python" / "meshrpc_codec.py").read_text() != "edited by hand"  # ours: regenerated
    assert (out / ".codecgen-manifest").read_text().splitlines() == manifest
    _no_staging(tmp_path)


def test_generate_refuses_a_mount_point_inside_the_output_naming_it(capsys, tmp_path):
    out = _generated(tmp_path, capsys)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs inside the output needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(out / "python")], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        before = _snapshot(out)
        assert_user_error(*rc_err(capsys, "generate", MESHRPC, "-o", out),
                          culprit=r"out/python is a mount point")
        assert _snapshot(out) == before
    finally:
        subprocess.run(["umount", str(out / "python")], check=True)
    _no_staging(tmp_path)


def test_encode_a_direction_dependent_spec(capsys, tmp_path):
    kafka = str(ROOT / "protocols" / "kafka.py")
    request = {"message": {"header": {"api_key": 3, "api_version": 1, "correlation_id": 9,
                                      "client": {"client_id_len": 2, "client_id": {"value": "ab"}}}, "body": "x"}}
    encode_file(capsys, tmp_path, kafka, [request])
    rc, out, err = call(capsys, "decode", kafka, tmp_path / "frames.bin")
    assert_ok(rc, err)
    (obj,) = json_lines(out)
    assert obj["request_id"] == 9 and obj["metadata"]["api_key"] == "3"


def test_without_the_docker_sdk_only_the_commands_that_need_it_fail_in_one_line():
    """`pip install codecgen` without the [image] extra: the CLI still loads; `image` and the
    e2e steps that talk to Docker say what to install (the sample image of the e2e suite is
    such an install)."""
    code = ("import sys; sys.modules['docker'] = None\n"
            "from codecgen.cli import main\n"
            "print(main(['image', 'build', 'x.py', '--tag', 'y']), main(['e2e', 'preflight', '--image', 'x']),"
            " main(['check', sys.argv[1]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "protocols" / "awesomerpc.py")],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "2 2 0"
    assert proc.stderr.splitlines() == [
        "codecgen: error: codecgen image: this command needs the Python package 'docker': "
        "pip install 'codecgen[image]'",
        "codecgen: error: this command needs the Python package 'docker': pip install 'codecgen[image]'"]


@pytest.mark.parametrize("engine", ["python", "cpp"])
def test_an_empty_routing_field_publishes_no_key_on_both_engines(capsys, tmp_path, engine):
    """meshrpc routes on header.service and header.method; with service empty, only method is
    published (as tshark shows no field for an empty string), by the reference codec and the C++."""
    encode_file(capsys, tmp_path, MESHRPC, [{"request_id": 3, "header": {"service": "", "method": "Get"}}])
    rc, out, err = call(capsys, "decode", MESHRPC, tmp_path / "frames.bin", "--engine", engine)
    assert_ok(rc, err)
    assert json.loads(out)["metadata"] == {"method": "Get", "x-codecgen-codec": "aeraki.meta_protocol.codec.meshrpc"}


DIRECTION_SWITCH_SPEC = '''
from construct import GreedyBytes, Int16ub, Int32ub, Prefixed, Struct, Switch
from codecgen import DIRECTION, REQUEST, RESPONSE, Protocol

PROTOCOL = Protocol(
    name="dirrpc",
    frame=Struct(
        "head" / Switch(DIRECTION, {REQUEST: Struct("cmd" / Int16ub), RESPONSE: Struct("status" / Int16ub)}),
        "request_id" / Int32ub,
        "body" / Prefixed(Int32ub, GreedyBytes),
    ),
    request_id="request_id",
    routing_keys={"cmd": "head.cmd"},
    body="body",
    sample_response={"head.status": 0},
)
'''


@pytest.mark.slow
def test_check_prints_offsets_after_a_direction_switch_of_equal_sizes(capsys, tmp_path):
    spec = tmp_path / "dirrpc.py"
    spec.write_text(DIRECTION_SWITCH_SPEC)
    rc, out, err = call(capsys, "check", spec)
    assert_ok(rc, err)
    fields = {line.split()[0]: line.split()[1] for line in out.splitlines()
              if line.startswith("  ") and len(line.split()) > 1 and line.split()[1].startswith("@")}
    assert fields["head"] == "@0" and fields["request_id"] == "@2" and fields["body"] == "@6", out
    # the generated C++ reads at those offsets and still agrees with the reference codec
    rc, out, err = call(capsys, "verify", spec, "--cases", "300")
    assert rc == 0, out + err
