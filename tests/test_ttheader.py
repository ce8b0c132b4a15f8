"""protocols/ttheader.py (Kitex TTHeader) on frames laid out as Kitex writes them.

No Kitex peer runs here: Kitex is Go, and its modules come from the Go module proxy, which this
machine cannot reach. What stands in for it:

- the frames are assembled in this file from the layout in the wire-format sheet (§3.6) and
  cloudwego/gopkg ``protocol/ttheader`` (``encode.go``: ACL token, string info, int info, zero
  padding; ``decode.go``: padding bytes skipped anywhere, unknown info ids refused, the last of
  a repeated key wins), around Thrift messages written by Apache Thrift's Python library
  (``TBinaryProtocol``); the one frame gopkg's own tests spell out byte by byte
  (``decode_test.go``, 62 bytes of padding, no payload) is checked too;
- what our codecs write (mutations, error replies) is read back by this file's own TTHeader
  reader, written from the same sheet and not from codecgen's extension, and its payload by
  Apache Thrift's ``TBinaryProtocol`` and ``TApplicationException``.

``codecgen verify`` (run on every spec by tests/test_verify.py) checks the two engines against
each other on random headers; this file checks them against the layout.
"""

from __future__ import annotations

import struct

import pytest

from codecgen import engines
from codecgen.backends import python as pyb
from codecgen.frontend import load
from codecgen.ir import ErrorType
from conftest import ROOT

ENGINES = ("python", "cpp")
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4
# Kitex int keys (wire-formats §3.6, metakey.go)
TRANSPORT_TYPE, FROM_SERVICE, TO_SERVICE, TO_METHOD, RPC_TIMEOUT, FROM_METHOD, MSG_TYPE = 1, 3, 6, 9, 12, 20, 22


@pytest.fixture(scope="module")
def proto():
    return load(ROOT / "protocols" / "ttheader.py")


@pytest.fixture(scope="module")
def native(proto):
    from codecgen.engines.native import native_codec

    codec = native_codec(proto)
    yield codec
    codec.close()


# ---------------------------------------------------------------------------- frames, Kitex's way

def message(name: str, mtype: int, seqid: int, fields: bytes = b"\x00") -> bytes:
    """A Thrift binary message from Apache's TBinaryProtocol (strict), ``fields`` the struct."""
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol
    from thrift.transport.TTransport import TMemoryBuffer

    buf = TMemoryBuffer()
    prot = TBinaryProtocol(buf, strictWrite=True)
    prot.writeMessageBegin(name, mtype, seqid)
    buf.write(fields)
    prot.writeMessageEnd()
    return buf.getvalue()


def application_exception(name: str, seqid: int, kind: int, text: str) -> bytes:
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException
    from thrift.transport.TTransport import TMemoryBuffer

    buf = TMemoryBuffer()
    prot = TBinaryProtocol(buf, strictWrite=True)
    prot.writeMessageBegin(name, EXCEPTION, seqid)
    TApplicationException(kind, text).write(prot)
    prot.writeMessageEnd()
    return buf.getvalue()


def _str(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def ttheader(payload: bytes, seqid: int, ints=(), strs=(), acl: bytes | None = None, flags: int = 0,
             protocol: int = 0, transforms=(), extra: bytes = b"") -> bytes:
    """One TTHeader frame as gopkg's encoder lays it out: the ACL token, then string key/values,
    then int key/values, then zero padding to 4 bytes; ``extra`` goes before the padding."""
    header = bytes([protocol, len(transforms), *transforms])
    if acl is not None:
        header += b"\x11" + _str(acl)
    if strs:
        header += b"\x01" + struct.pack(">H", len(strs))
        header += b"".join(_str(k.encode()) + _str(v.encode()) for k, v in strs)
    if ints:
        header += b"\x10" + struct.pack(">H", len(ints))
        header += b"".join(struct.pack(">H", k) + _str(v.encode()) for k, v in ints)
    header += extra
    header += bytes(-len(header) % 4)
    body = struct.pack(">HHiH", 0x1000, flags, seqid, len(header) // 4) + header + payload
    return struct.pack(">I", len(body)) + body


def read_ttheader(frame: bytes) -> dict:
    """This file's own TTHeader reader (wire-formats §3.6): the outer fields, the info blocks
    and the payload; asserts what Kitex's decoder checks."""
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    magic, flags, seqid, words = struct.unpack(">HHiH", frame[4:14])
    assert magic == 0x1000
    header, payload = frame[14:14 + 4 * words], frame[14 + 4 * words:]
    assert 2 <= len(header) <= 65536
    out = {"flags": flags, "seqid": seqid, "protocol": header[0], "transforms": header[1], "ints": [],
           "strs": [], "acl": None, "payload": payload}
    at = 2 + header[1]

    def u16():
        nonlocal at
        at += 2
        return struct.unpack(">H", header[at - 2:at])[0]

    def string():
        nonlocal at
        n = u16()
        at += n
        assert at <= len(header)
        return header[at - n:at].decode()

    while at < len(header):
        info = header[at]
        at += 1
        if info == 0x00:
            continue
        if info == 0x01:
            out["strs"] += [(string(), string()) for _ in range(u16())]
        elif info == 0x10:
            out["ints"] += [(u16(), string()) for _ in range(u16())]
        elif info == 0x11:
            out["acl"] = string()
        else:
            raise AssertionError(f"info id {info:#x}")
    return out


def read_message(payload: bytes):
    """(name, type, seqid, TApplicationException or None) read by Apache's TBinaryProtocol."""
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException
    from thrift.transport.TTransport import TMemoryBuffer

    prot = TBinaryProtocol(TMemoryBuffer(payload))
    name, mtype, seqid = prot.readMessageBegin()
    exc = None
    if mtype == EXCEPTION:
        exc = TApplicationException()
        exc.read(prot)
        prot.readMessageEnd()
        assert prot.trans.read(1) == b""  # the whole payload was the message
    return name, mtype, seqid, exc


# A request as a Kitex client writes it: int info (caller, callee, message type, transport,
# timeout), string info (the IDL service name and propagated metainfo), flags 0.
ADD_ARGS = b"\x08\x00\x01\x00\x00\x00\x28\x08\x00\x02\x00\x00\x00\x02\x00"  # i32 a=40, i32 b=2, STOP
REQUEST = ttheader(
    message("Add", CALL, 7, ADD_ARGS), 7,
    ints=[(FROM_SERVICE, "frontend"), (FROM_METHOD, "Checkout"), (TO_SERVICE, "calc"), (TO_METHOD, "Add"),
          (MSG_TYPE, "1"), (TRANSPORT_TYPE, "framed"), (RPC_TIMEOUT, "1000")],
    strs=[("isn", "CalcService"), ("RPC_TRANSIT_tenant", "t\u00e9st"), ("RPC_PERSIST_Env", "canary")])
# codecgen's mark, published on every decoded request (codecgen.ir.CODEC_ID_KEY).
MARK = {"x-codecgen-codec": "aeraki.meta_protocol.codec.ttheader"}
REQUEST_KEYS = {"method": "Add", "from_service": "frontend", "from_method": "Checkout", "to_service": "calc",
                "to_method": "Add", "isn": "CalcService", "rpc_transit_tenant": "t\u00e9st",
                "rpc_persist_env": "canary"}


def decode_one(proto, frame: bytes, direction: str, engine: str) -> dict:
    result = engines.decode_stream(proto, frame, direction, engine=engine)
    assert result.error is None and result.held == 0, result.error
    assert len(result.frames) == 1
    return result.frames[0]


def test_gopkg_decode_test_vector():
    """gopkg's decode_test.go builds this frame by hand (LENGTH 0x4a, seqid 1, header size 0x10
    words: protocol 0, no transforms, 62 bytes of padding, no payload) and expects it decoded.
    It has no Thrift message, so the spec refuses it at the payload's version, not the header."""
    frame = bytes.fromhex("0000004a" "10000000" "00000001" "0010") + bytes(64)
    got = read_ttheader(frame)
    assert (got["seqid"], got["protocol"], got["strs"], got["payload"]) == (1, 0, [], b"")
    from codecgen.ext.thrift import KitexHeader

    value = KitexHeader.decode(frame[14:], {})  # the header alone: accepted, as by gopkg
    assert KitexHeader.entries(value) == [] and len(value) == 64


def test_reader_reads_what_the_builder_writes():
    """The control for the tests below: this file's writer and reader agree."""
    got = read_ttheader(REQUEST)
    assert got["ints"][2] == (TO_SERVICE, "calc") and got["strs"][0] == ("isn", "CalcService")
    assert read_message(got["payload"])[:3] == ("Add", CALL, 7)


@pytest.mark.parametrize("engine", ENGINES)
def test_kitex_request_decodes_with_its_routing_information(proto, engine):
    frame = decode_one(proto, REQUEST, "request", engine)
    assert frame["message_type"] == "Request" and frame["request_id"] == 7
    assert frame["metadata"] == {**REQUEST_KEYS, **MARK}
    assert frame["operation_name"] == "Add"


@pytest.mark.parametrize("engine", ENGINES)
def test_responses_oneway_acl_and_padding_between_blocks(proto, engine):
    reply = ttheader(message("Add", REPLY, 7, b"\x08\x00\x00\x00\x00\x00\x2a\x00"), 7, ints=[(MSG_TYPE, "2")],
                     strs=[("biz-status", "0")])
    assert decode_one(proto, reply, "response", engine)["metadata"] == {"method": "Add", "biz-status": "0"}
    error = ttheader(application_exception("Add", 8, 6, "boom"), 8, ints=[(MSG_TYPE, "3")])
    got = decode_one(proto, error, "response", engine)
    assert got["message_type"] == "Error" and got["request_id"] == 8
    oneway = ttheader(message("Log", ONEWAY, -3), -3, strs=[("isn", "Log")], acl=b"gdpr-token",
                      extra=b"\x00\x00\x00\x00\x00")  # Kitex skips padding bytes anywhere
    got = decode_one(proto, oneway, "request", engine)
    assert got["message_type"] == "Oneway" and got["request_id"] == (-3) & ((1 << 64) - 1)
    assert got["metadata"] == {"method": "Log", "isn": "Log", **MARK}
    # A repeated key: the last value wins, as in Kitex's map.
    twice = ttheader(message("Add", CALL, 9), 9, strs=[("k", "1"), ("K", "x"), ("k", "2")])
    assert decode_one(proto, twice, "request", engine)["metadata"] == {"method": "Add", "k": "2", **MARK}


@pytest.mark.parametrize("header, reason", [
    (dict(protocol=4), "protocol id 4"),  # Kitex protobuf
    (dict(transforms=(1,)), "payload transform"),
    (dict(extra=b"\x02\x00\x00"), "info id 0x02"),  # not a TTHeader info block
    (dict(extra=b"\x01\x00\x01\x00\x09ab"), "runs past the end of the header"),
])
@pytest.mark.parametrize("engine", ENGINES)
def test_what_kitex_refuses_is_refused(proto, engine, header, reason):
    frame = ttheader(message("Add", CALL, 1), 1, **header)
    result = engines.decode_stream(proto, frame, "request", engine=engine)
    assert result.error is not None and not result.frames
    assert reason in result.error


def _encode(proto, native, engine, frame: bytes, mutation: dict) -> bytes:
    if engine == "cpp":
        return native.encode(frame, "request", mutation, "request")
    codec = pyb.load(proto).Codec()
    md = codec.decode(bytearray(frame), "request")
    return bytes(codec.encode(md, mutation, frame))


@pytest.mark.parametrize("engine", ENGINES)
def test_mutation_appends_string_info_and_keeps_everything_else(proto, native, engine):
    mutation = {"x-added": "by-codecgen", "rpc_persist_env": "prod", "x-envoy-peer-metadata": "dropped"}
    out = _encode(proto, native, engine, REQUEST, mutation)
    before, after = read_ttheader(REQUEST), read_ttheader(out)
    assert after["payload"] == before["payload"]  # the message, byte for byte
    assert after["ints"] == before["ints"] and (after["flags"], after["seqid"]) == (0, 7)
    # Appended as one block: the case of the existing key kept, the last value wins.
    assert after["strs"] == before["strs"] + [("RPC_PERSIST_Env", "prod"), ("x-added", "by-codecgen")]
    assert decode_one(proto, out, "request", engine)["metadata"] == {
        **REQUEST_KEYS, "rpc_persist_env": "prod", "x-added": "by-codecgen", **MARK}
    # Nothing to change: the frame is left as it is.
    assert _encode(proto, native, engine, REQUEST, {"isn": "CalcService", "x-envoy-peer-metadata": "x"}) == REQUEST


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type, kind", [(ErrorType.RouteNotFound, 1), (ErrorType.NoHealthyUpstream, 6)])
def test_error_reply_is_a_ttheader_tapplicationexception(proto, native, engine, error_type, kind):
    text = f"codecgen: {error_type.name}"
    if engine == "cpp":
        reply = native.on_error(REQUEST, "request", int(error_type), text)
    else:
        codec = pyb.load(proto).Codec()
        reply = bytes(codec.on_error(codec.decode(bytearray(REQUEST), "request"), int(error_type), text))
    got = read_ttheader(reply)
    assert (got["flags"], got["seqid"], got["protocol"], got["transforms"]) == (0, 7, 0, 0)
    name, mtype, seqid, exc = read_message(got["payload"])
    assert (name, mtype, seqid) == ("Add", EXCEPTION, 7)
    assert (exc.type, exc.message) == (kind, text)
