"""The Wireshark dissector (`codecgen dissector`) proved by tshark against the codecs.

- Every bundled protocol (protocols/*.py): `codecgen pcap` conversations (requests, responses,
  heartbeats, error replies, coalesced and split segments) dissected by
  `tshark -X lua_script:<name>.lua` give, frame by frame, the request id, message type and
  routing keys of `codecgen replay`; responses point at their request.
- Every real capture in tests/corpus/: the same, against `codecgen replay` with both engines.
- Where tshark has its own dissector (Thrift, Kafka, Modbus/TCP, MQTT), our fields equal its
  fields, PDU by PDU (the built-in one disabled for our run).
- Hostile streams (every split point, truncations, garbage, oversize lengths, from the verify
  cases): tshark's stderr stays empty (no Lua error) and a frame is marked malformed exactly
  where the reference codec refuses it.
- The CLI: `codecgen dissector`, `codecgen generate` (wireshark/<name>.lua), `codecgen pcap`,
  bad input as one line and exit 2.

tshark runs once per capture (many frames per run) to keep the suite short.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from codecgen import ir
from codecgen.backends import python as pyb
from codecgen.backends import wireshark
from codecgen.backends.k8s import DEFAULT_PORT
from codecgen.frontend import load
from codecgen.replay.cli import replay
from codecgen.sample.pcap import write, write_streams

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
SPECS = sorted(p.stem for p in (ROOT / "protocols").glob("*.py"))
CORPORA = sorted(d.name for d in CORPUS.iterdir() if (d / "expected.json").is_file())
BUILTIN = ("thrift", "kafka", "modbus", "mqtt")  # tshark 4.0 dissects these itself
ROOT_WARNING = 'Running as user "root" and group "root". This could be dangerous.\n'

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (apt-get install tshark)")


@lru_cache(maxsize=None)
def wireshark_protocols() -> frozenset:
    run = subprocess.run(["tshark", "-G", "protocols"], capture_output=True, text=True, check=True)
    return frozenset(line.split("\t")[2] for line in run.stdout.splitlines() if line.count("\t") >= 2)


@lru_cache(maxsize=None)
def proto_of(name: str) -> ir.ProtocolIR:
    return load(str(ROOT / "protocols" / f"{name}.py"))


def filter_name(name: str) -> str:
    """The name our dissector registers (the rule in codecgen/backends/wireshark)."""
    return name + wireshark.SUFFIX if name in wireshark_protocols() else name


@lru_cache(maxsize=None)
def lua(name: str, folder: str) -> Path:
    path = Path(folder) / wireshark.file_name(proto_of(name))
    path.write_text(wireshark.render(proto_of(name)))
    return path


@pytest.fixture(scope="module")
def lua_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lua"))


def tshark(name: str, pcap: Path, port: int, lua_dir: str, two_pass: bool = False) -> list:
    """Packets of `tshark -T json` with our dissector decoding tcp.port ``port``; stderr must be empty."""
    args = ["tshark", "-r", str(pcap), "-X", f"lua_script:{lua(name, lua_dir)}",
            "-d", f"tcp.port=={port},{filter_name(name)}", "-T", "json", "--no-duplicate-keys"]
    if two_pass:
        args.append("-2")
    if name == "modbus":
        args += ["--disable-protocol", "mbtcp"]  # it claims port 502 traffic by heuristics too
    run = subprocess.run(args, capture_output=True, timeout=300)
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 0, stderr
    assert stderr.replace(ROOT_WARNING, "") == "", stderr
    # string fields carry the frame's bytes as they are (the codecs' surrogateescape text)
    return json.loads(run.stdout.decode("utf-8", "surrogateescape"))


def _list(value):
    return value if isinstance(value, list) else [value]


def our_pdus(name: str, packets: list, port: int) -> dict:
    """{(stream, direction): [PDU dict]} from our dissector's layers, in capture order."""
    p = filter_name(name)
    out: dict = {}
    for packet in packets:
        layers = packet["_source"]["layers"]
        if p not in layers:
            continue
        tcp = layers["tcp"]
        side = (int(tcp["tcp.stream"]), "response" if int(tcp["tcp.srcport"]) == port else "request")
        for pdu in _list(layers[p]):
            out.setdefault(side, []).append(dict(pdu, frame=int(layers["frame"]["frame.number"])))
    return out


def summary(name: str, pdu: dict) -> tuple:
    """(request id, message type, keys) of one of our PDUs; keys: header entries, then routing keys."""
    p = filter_name(name)
    keys = {}
    for entry in _list(pdu.get(f"{p}.header_entry", [])):
        key, _, value = entry.partition(": ")
        keys[key] = value
    keys.update({k[len(p) + 5:]: v for k, v in pdu.items() if k.startswith(p + ".key.")})
    return int(pdu[f"{p}.request_id"]), pdu[f"{p}.message_type"], keys


def comparable(proto: ir.ProtocolIR, metadata: dict) -> dict:
    """The codec's metadata our dissector can show: everything, except values only an
    extension reads (its header map entries, keys on its outputs): those are bytes here.
    codecgen's mark (ir.CODEC_ID_KEY) is shown too, on requests, as every codec adds it."""
    r = proto.roles
    header_in_lua = r.header_map is not None and r.header_map.key_field
    declared = {k.key for k in r.routing_keys if ir.find_output(proto.frame, k.path) is None}
    declared.add(ir.CODEC_ID_KEY)
    return {k: v for k, v in metadata.items() if header_in_lua or k in declared}


def extension_request_id(proto: ir.ProtocolIR) -> bool:
    """The request id is an extension's output (Baidu std, Tars, tRPC): Lua shows 0."""
    return proto.roles.request_id is not None and ir.find_output(proto.frame, proto.roles.request_id) is not None


def replay_frames(name: str, pcap: Path, port: int, engine: str) -> dict:
    out = io.StringIO()
    replay(str(ROOT / "protocols" / f"{name}.py"), str(pcap), port=port, engine=engine, out=out)
    frames: dict = {}
    for line in out.getvalue().splitlines():
        obj = json.loads(line)
        if "message_type" in obj:
            frames.setdefault((obj["stream"], obj["direction"]), []).append(obj)
    return frames


def extension_types(proto: ir.ProtocolIR) -> set:
    """Message types whose rule reads an extension's output (Dubbo's exception flag, Tars'
    packet type): Lua reads 0 there, so the dissector shows Request/Response instead."""
    return {rule.type.name for rule in proto.roles.message_type_rules
            if any(ir.find_output(proto.frame, path) for path in ir.expr_refs(rule.when))}


def assert_same_as_replay(name: str, pcap: Path, port: int, lua_dir: str, engines=("python",)) -> int:
    proto = proto_of(name)
    ours = our_pdus(name, tshark(name, pcap, port, lua_dir), port)
    compared = 0
    for engine in engines:
        theirs = replay_frames(name, pcap, port, engine)
        assert set(ours) == set(theirs), (engine, sorted(ours), sorted(theirs))
        for side, frames in theirs.items():
            mine = [summary(name, pdu) for pdu in ours[side]]
            assert len(mine) == len(frames), (engine, side)
            for (rid, mtype, keys), frame in zip(mine, frames):
                assert rid == (0 if extension_request_id(proto) else frame["request_id"]), (engine, side, frame)
                # A type from a rule that reads an output may still hold by the rule's other terms.
                default = "Request" if side[1] == "request" else "Response"
                shown = {frame["message_type"]} | ({default} if frame["message_type"] in extension_types(proto) else set())
                assert mtype in shown, (engine, side, frame)
                assert keys == comparable(proto, frame["metadata"]), (engine, side, frame)
                compared += 1
    return compared


# --------------------------------------------------------------------------- naming


def test_registered_name_is_the_protocol_or_the_documented_variant(lua_dir, tmp_path):
    pcap = write(str(ROOT / "protocols" / "thrift.py"), str(tmp_path / "t.pcap"), count=2, conversations=1)
    for name in ("awesomerpc", "thrift"):
        packets = tshark(name, pcap if name == "thrift" else
                         write(str(ROOT / "protocols" / f"{name}.py"), str(tmp_path / "a.pcap"), count=2,
                               conversations=1), DEFAULT_PORT, lua_dir)
        names = {k for packet in packets for k in packet["_source"]["layers"]}
        expected = name + "_cg" if name == "thrift" else name
        assert expected in names, names
    assert "thrift" in wireshark_protocols() and "awesomerpc" not in wireshark_protocols()


# --------------------------------------------------------------------------- sample conversations


@pytest.mark.parametrize("name", SPECS)
def test_sample_conversations_equal_replay(name, lua_dir, tmp_path):
    pcap = write(str(ROOT / "protocols" / f"{name}.py"), str(tmp_path / f"{name}.pcap"), count=12)
    assert assert_same_as_replay(name, pcap, DEFAULT_PORT, lua_dir) == 2 * 2 * 12 - _unanswered(name)
    # Two passes: every answered request points at its response and back, with a response time.
    p = filter_name(name)
    pdus = our_pdus(name, tshark(name, pcap, DEFAULT_PORT, lua_dir, two_pass=True), DEFAULT_PORT)
    responses = [pdu for (_, d), items in pdus.items() if d == "response" for pdu in items]
    requests = {pdu["frame"] for (_, d), items in pdus.items() if d == "request" for pdu in items}
    assert responses and all(int(pdu[f"{p}.request_in"]) in requests for pdu in responses)
    assert all(float(pdu[f"{p}.time"]) > 0 for pdu in responses)
    answered = [pdu for (_, d), items in pdus.items() if d == "request" for pdu in items if f"{p}.response_in" in pdu]
    assert len(answered) == len(responses)


def test_empty_key_fields_follow_the_codecs(lua_dir, tmp_path):
    """MQTT CONNECT with an empty client id (its Key says publish_empty=True), PUBLISH with an
    empty and a non-empty topic (an empty string field publishes no key): the dissector shows
    exactly the keys the codec publishes, codecgen's mark included on each request."""
    def publish(topic: bytes) -> bytes:
        rest = len(topic).to_bytes(2, "big") + topic + b"payload"
        return bytes([0x30, len(rest)]) + rest

    connect_rest = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
    pdus = [bytes([0x10, len(connect_rest)]) + connect_rest, publish(b""), publish(b"a/b")]
    pcap = write_streams(tmp_path / "empty.pcap", [[("request", pdu) for pdu in pdus]], DEFAULT_PORT)
    assert assert_same_as_replay("mqtt", pcap, DEFAULT_PORT, lua_dir) == 3
    shown = [summary("mqtt", pdu)[2] for pdu in our_pdus("mqtt", tshark("mqtt", pcap, DEFAULT_PORT, lua_dir),
                                                          DEFAULT_PORT)[(0, "request")]]
    mark = {ir.CODEC_ID_KEY: proto_of("mqtt").codec_name}
    assert shown == [{"packet_type": "1", "client_id": "", **mark}, {"packet_type": "3", **mark},
                     {"packet_type": "3", "topic": "a/b", **mark}]


def _unanswered(name: str) -> int:
    """Oneway sample requests (no reply) across the two conversations."""
    from codecgen.sample import Sample
    from codecgen.sample.pcap import exchanges

    return 2 * sum(1 for _, reply in exchanges(Sample.load(str(ROOT / "protocols" / f"{name}.py")), 12)
                   if not reply)


def test_display_filters_value_strings_and_info(lua_dir, tmp_path):
    pcap = write(str(ROOT / "protocols" / "meshrpc.py"), str(tmp_path / "m.pcap"), count=6, conversations=1)
    run = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{lua('meshrpc', lua_dir)}",
                          "-Y", 'meshrpc.flags.response == 0 && meshrpc.key.service == "v1"',
                          "-T", "fields", "-e", "meshrpc.request_id", "-e", "_ws.col.Info"],
                         capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    assert rows and all(info.startswith("Request id=") and "service=v1" in info for _, info in rows)
    run = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{lua('thrift', lua_dir)}",
                          "-d", f"tcp.port=={DEFAULT_PORT},thrift_cg", "-V"], capture_output=True, text=True)
    # a different protocol's bytes: thrift refuses them (expert info), without a Lua error
    assert "Frame refused by the codec" in run.stdout or "refused" in run.stdout
    assert run.stderr.replace(ROOT_WARNING, "") == ""


# --------------------------------------------------------------------------- real captures


def corpus_capture(name: str, tmp_path: Path) -> tuple[Path, int]:
    meta = json.loads((CORPUS / name / "expected.json").read_text())
    if (CORPUS / name / "capture.pcap").is_file():
        return CORPUS / name / "capture.pcap", meta["port"]
    # Only the byte streams were kept (dubbo): they become one connection each.
    conversations = []
    for i in range(len(meta["connections"])):
        c2s = (CORPUS / name / f"conn{i}.c2s.bin").read_bytes()
        s2c = (CORPUS / name / f"conn{i}.s2c.bin").read_bytes()
        conversations.append([("request", c2s[j:j + 1400]) for j in range(0, len(c2s), 1400)]
                             + [("response", s2c[j:j + 1400]) for j in range(0, len(s2c), 1400)])
    return write_streams(tmp_path / f"{name}.pcap", conversations, DEFAULT_PORT), DEFAULT_PORT


@pytest.mark.parametrize("name", CORPORA)
def test_real_captures_equal_replay_with_both_engines(name, lua_dir, tmp_path):
    if not (ROOT / "protocols" / f"{name}.py").is_file():
        pytest.skip(f"tests/corpus/{name} has no protocols/{name}.py")
    pcap, port = corpus_capture(name, tmp_path)
    assert assert_same_as_replay(name, pcap, port, lua_dir, engines=("python", "cpp")) > 0


@pytest.mark.parametrize("name", [n for n in BUILTIN if n in CORPORA])
def test_real_captures_equal_wiresharks_own_dissector(name, lua_dir):
    """Field by field against tshark's own dissector (test_protocols_real.tshark_pdus reads it)."""
    from test_protocols_real import tshark_pdus

    meta = json.loads((CORPUS / name / "expected.json").read_text())
    pcap, port = CORPUS / name / "capture.pcap", meta["port"]
    theirs = tshark_pdus(name, pcap, port)
    ours = our_pdus(name, tshark(name, pcap, port, lua_dir), port)
    assert set(theirs) == set(ours)
    for side, pdus in theirs.items():
        mine = [summary(name, pdu) for pdu in ours[side]]
        assert len(mine) == len(pdus), side
        for (rid, mtype, keys), other in zip(mine, pdus):
            # codecgen's mark is ours (on requests only); Wireshark's dissector has no such field.
            mark = keys.pop(ir.CODEC_ID_KEY, None)
            assert mark == (proto_of(name).codec_name if side[1] == "request" else None), (side, mark)
            assert rid == other["request_id"] and keys == other["keys"], (side, other)
            if other["message_type"] is not None:
                assert mtype == other["message_type"]


# --------------------------------------------------------------------------- hostile captures


def hostile_cases(name: str) -> list[dict]:
    from codecgen.verify.cases import CaseMaker

    proto = proto_of(name)
    maker = CaseMaker(proto, pyb.load(proto), random.Random(14))
    cases = []
    for make in (maker.split, maker.truncated, maker.garbage, maker.oversize, maker.bytewise):
        cases.extend(make())
    return cases


def chunked(data: bytes, chunks: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in chunks:
        if size > 0:
            out.append(data[at:at + size])
        at += size
    if at < len(data):
        out.append(data[at:])
    return [seg for seg in out if seg]


@pytest.mark.parametrize("name", SPECS)
def test_hostile_captures_never_raise_and_are_refused_where_the_codec_refuses(name, lua_dir, tmp_path):
    cases = hostile_cases(name)
    conversations = [[(case["direction"], seg) for seg in chunked(case["data"], case["chunks"])] for case in cases]
    pcap = write_streams(tmp_path / "hostile.pcap", conversations, DEFAULT_PORT)
    packets = tshark(name, pcap, DEFAULT_PORT, lua_dir)  # asserts stderr is empty
    p = filter_name(name)
    ours = our_pdus(name, packets, DEFAULT_PORT)
    module = pyb.load(proto_of(name))
    extensions = ir.extensions(proto_of(name).frame)
    refused = 0
    for index, case in enumerate(cases):
        frames, held, error = module.decode_all(case["data"], case["direction"])
        pdus = ours.get((index, case["direction"]), [])
        decoded = [pdu for pdu in pdus if f"{p}.request_id" in pdu]
        malformed = [pdu for pdu in pdus if p + ".malformed" in json.dumps(pdu)]
        if error is not None and error.startswith("frame: ") and extensions:
            # Refused by an extension's parser (a Hessian2 or THeader value): the dissector shows
            # an extension's bytes without parsing them, so it cannot see this (documented).
            assert len(decoded) >= len(frames)
            continue
        assert len(decoded) == len(frames), (case["kind"], case["data"].hex(), error)
        assert bool(malformed) == (error is not None), (case["kind"], case["data"].hex(), error)
        refused += error is not None
    kinds = {case["kind"] for case in cases}
    assert {"split", "truncated", "garbage"} <= kinds
    if name in ("awesomerpc", "meshrpc", "dubbo", "thrift", "kafka", "modbus"):
        assert refused > 0  # their garbage and oversize cases include frames the codec refuses


# --------------------------------------------------------------------------- CLI


def run_cli(*args):
    import sys

    return subprocess.run([sys.executable, "-m", "codecgen.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_cli_dissector_generate_and_pcap(tmp_path):
    spec = str(ROOT / "protocols" / "awesomerpc.py")
    run = run_cli("dissector", spec, "-o", str(tmp_path / "d"))
    assert run.returncode == 0, run.stderr
    text = (tmp_path / "d" / "awesomerpc.lua").read_text()
    assert text == wireshark.render(proto_of("awesomerpc"))
    run = run_cli("generate", spec, "-o", str(tmp_path / "g"))
    assert run.returncode == 0 and (tmp_path / "g" / "wireshark" / "awesomerpc.lua").read_text() == text
    run = run_cli("pcap", spec, "-o", str(tmp_path / "s.pcap"), "--count", "3")
    assert run.returncode == 0 and (tmp_path / "s.pcap").stat().st_size > 0
    for args, culprit in ((("dissector", "nope.py", "-o", str(tmp_path)), "nope.py"),
                          (("pcap", spec, "-o", str(tmp_path / "no" / "x.pcap")), "-o"),
                          (("pcap", spec, "-o", str(tmp_path / "x.pcap"), "--count", "0"), "--count"),
                          (("pcap", spec, "-o", str(tmp_path / "x.pcap"), "--port", "70000"), "--port")):
        run = run_cli(*args)
        assert run.returncode == 2 and culprit in run.stderr and "Traceback" not in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1


def test_heuristic_claims_a_stream_on_an_unregistered_port(lua_dir, tmp_path):
    """meshrpc starts with the constant "MR": without -d, on a port nobody registered."""
    pcap = write(str(ROOT / "protocols" / "meshrpc.py"), str(tmp_path / "m.pcap"), count=6, conversations=1,
                 port=7777)
    run = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{lua('meshrpc', lua_dir)}",
                          "-T", "fields", "-e", "meshrpc.request_id"], capture_output=True, text=True, check=True)
    ids = [line for line in run.stdout.splitlines() if line]
    assert len(ids) >= 6, run.stdout
    assert wireshark.magic(proto_of("meshrpc")) == (0, b"MR")
    assert wireshark.magic(proto_of("awesomerpc")) is None and wireshark.magic(proto_of("modbus")) is None


def test_summary_lines_without_a_tree_equal_the_dissection_with_one(lua_dir, tmp_path):
    """tshark's plain summary gives the dissector no tree (one walk per frame): the Info column
    (message type, request id, routing keys) is the same as with a tree."""
    pcap = write(str(ROOT / "protocols" / "meshrpc.py"), str(tmp_path / "m.pcap"), count=9, conversations=1)
    script = f"lua_script:{lua('meshrpc', lua_dir)}"
    plain = subprocess.run(["tshark", "-r", str(pcap), "-X", script, "-o", "gui.column.format:\"Info\",\"%i\""],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    with_tree = subprocess.run(["tshark", "-r", str(pcap), "-X", script, "-T", "fields", "-e", "_ws.col.Info"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.strip() for line in plain] == [line.strip() for line in with_tree]
    assert sum("id=" in line for line in plain) >= 9
