"""Zigzag varints (Protocol Buffers' sint32/sint64, Thrift compact's i16/i32/i64): the
wire type added in one place per backend (ir.ZigZag), checked on known encodings, through
the reference codec, and against the compiled C++ codec."""

import json
import shutil
import subprocess
import textwrap

import pytest

from codecgen import engines, ir
from codecgen.backends import python as pyb
from codecgen.cli import main
from codecgen.frontend import load
from codecgen.summary import summarize
from conftest import PROTOCOLS

SPEC = textwrap.dedent('''
    from construct import Bytes, Const, Int8ub, Struct, ZigZag, this
    from codecgen import Protocol

    frame = Struct(
        "magic" / Const(b"ZZ"),
        "seq" / ZigZag,                                   # signed request id
        "delta" / ZigZag,                                 # routed on, negative values included
        "length" / ZigZag,                                # a signed length: negative is refused
        "kind" / Int8ub,
        "body" / Bytes(this.length),
    )

    PROTOCOL = Protocol(
        name="zigzagrpc",
        frame=frame,
        request_id="seq",
        routing_keys={"delta": "delta"},
        response_error=this.kind == 2,
        error_reply={"kind": 2},
        body="body",
    )
''')

# Protocol Buffers' encoding table (encoding.md, "Signed Integers") plus the 64-bit ends.
KNOWN = [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (-2, b"\x03"), (63, b"\x7e"), (-64, b"\x7f"),
         (64, b"\x80\x01"), (2147483647, b"\xfe\xff\xff\xff\x0f"), (-2147483648, b"\xff\xff\xff\xff\x0f"),
         ((1 << 63) - 1, b"\xfe" + b"\xff" * 8 + b"\x01"), (-(1 << 63), b"\xff" * 9 + b"\x01")]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("zigzag") / "zigzagrpc.py"
    path.write_text(SPEC)
    return path


def _frame(seq: bytes, delta: bytes, body: bytes = b"hi", kind: int = 0) -> bytes:
    length = {0: b"\x00", 2: b"\x04", 3: b"\x06"}[len(body)]
    return b"ZZ" + seq + delta + length + bytes([kind]) + body


def test_lowered_to_its_own_node(spec):
    proto = load(spec)
    assert proto.field(("delta",)).node == ir.ZigZag()
    assert "delta" in summarize(proto) and "zigzag varint (signed)" in summarize(proto)


@pytest.mark.parametrize("value,wire", KNOWN, ids=[str(v) for v, _ in KNOWN])
def test_reference_codec_reads_the_known_encodings(spec, value, wire):
    result = engines.decode_stream(load(spec), _frame(b"\x02", wire), "request")
    assert result.error is None
    (frame,) = result.frames
    assert frame["metadata"]["delta"] == str(value) and frame["request_id"] == 1


def test_encode_writes_zigzag_and_a_negative_length_is_refused(spec):
    proto = load(spec)
    data = engines.encode_values(proto, {"seq": -3, "delta": -64, "length": 3, "kind": 1, "body": "abc"}, "x")
    assert data == b"ZZ\x05\x7f\x06\x01abc"
    bad = engines.decode_stream(proto, b"ZZ\x00\x00\x01\x00", "request")  # length -1
    assert bad.frames == [] and "negative length" in bad.error


def test_reference_module_imports_zigzag_only_when_used(spec):
    assert "from construct import ZigZag" in pyb.render(load(spec))
    assert "ZigZag" not in pyb.render(load(PROTOCOLS[0]))  # the bundled modules stay as they were


@pytest.mark.slow
def test_cpp_codec_agrees_with_the_reference(spec, capsys):
    """The compiled C++ codec (ASan+UBSan) against the reference: random and hostile cases,
    then the known encodings through both engines."""
    assert main(["verify", str(spec), "--cases", "600"]) == 0, capsys.readouterr()
    proto = load(spec)
    stream = b"".join(_frame(wire, wire[::-1] if len(wire) == 1 else wire) for _, wire in KNOWN)
    python = engines.decode_stream(proto, stream, "request", engine="python")
    cpp = engines.decode_stream(proto, stream, "request", engine="cpp")
    assert python.error is None and len(python.frames) == len(KNOWN)
    assert json.dumps(cpp.frames) == json.dumps(python.frames)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
def test_wireshark_dissector_shows_the_signed_values(spec, tmp_path):
    """The dissector (backends/wireshark) reads the known encodings as the reference codec does,
    up to its documented limit: varints are Lua doubles there, exact below 2^53."""
    from codecgen.backends import wireshark
    from codecgen.backends.k8s import DEFAULT_PORT
    from codecgen.fuzz.pcap import write_pcap

    proto = load(spec)
    script = tmp_path / wireshark.file_name(proto)
    script.write_text(wireshark.render(proto))
    known = [(v, wire) for v, wire in KNOWN if abs(v) < 1 << 53]
    stream = b"".join(_frame(b"\x02", wire) for _, wire in known)
    pcap = write_pcap(tmp_path / "zz.pcap", stream, [], "request", proto.name)
    run = subprocess.run(["tshark", "-r", str(pcap), "-X", f"lua_script:{script}",
                          "-d", f"tcp.port=={DEFAULT_PORT},{proto.name}", "-T", "fields", "-e", "zigzagrpc.delta"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    shown = [v for line in run.stdout.split() for v in line.split(",")]
    assert shown == [str(v) for v, _ in known]
