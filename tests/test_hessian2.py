"""The Hessian 2 library (codecgen/ext/hessian2), Python and C++, on hand-made values.

Each value is sent as the one argument of a Dubbo request (descriptor ``Ljava/lang/Object;``)
and decoded by both engines: they must agree on whether it is valid and, when it is, reach the
attachments behind it. The byte-code map and its edge cases are wire-formats.md §2.
"""

from __future__ import annotations

import struct

import pytest

from codecgen import engines
from codecgen.ext.hessian2 import MAX_DEPTH, Hessian2Error, Reader, Writer, encode_string, encode_string_map
from codecgen.frontend import load

SPEC = "protocols/dubbo.py"


def _request(argument: bytes, attachments: bytes = b"H\x01k\x01vZ") -> bytes:
    body = (encode_string(b"2.0.2") + encode_string(b"org.apache.dubbo.demo.DemoService")
            + encode_string(b"0.0.0") + encode_string(b"sayHello") + encode_string(b"Ljava/lang/Object;")
            + argument + attachments)
    return b"\xda\xbb\xc2\x00" + struct.pack(">q", 7) + struct.pack(">i", len(body)) + body


def _nested_lists(depth: int) -> bytes:
    return b"\x79" * depth + b"\x90"  # depth one-element untyped lists around an int


VALID = {
    "compact-string": b"\x05hello",
    "medium-string": b"\x30\x20" + b"a" * 32,
    "final-S-string": b"S\x04\x00" + b"b" * 1024,
    "chunked-string": b"R\x00\x02ab" + b"R\x00\x00" + b"\x01c",
    "utf8-units": b"\x03\xc3\xa9\xe4\xb8\x96\xed\xa0\xbd",  # 2-, 3-byte and a surrogate half
    "four-byte-as-two-units": b"\x02\xf0\x9f\x98\x80",
    "binary-forms": b"\x58\x94" + b"\x23abc" + b"\x34\x10" + bytes(16) + b"B\x00\x02xy" + b"A\x00\x01zB\x00\x00",
    "ints": b"\x58\x96" + b"\x90\xc8\x01\xd4\x00\x01I\x00\x00\x00\x01\x80\xbf",
    "longs": b"\x58\x96" + b"\xe0\xf8\x01\x3c\x00\x01\x59\x00\x00\x00\x01L" + bytes(8) + b"\xd8",
    "doubles": b"\x58\x95" + b"\x5b\x5c\x5d\x01\x5e\x00\x01\x5f\x00\x00\x00\x01",
    "double-D": b"D" + struct.pack(">d", 1.5),
    "dates": b"\x7a\x4a" + bytes(8) + b"\x4b" + bytes(4),
    "true-false-null": b"\x7b\x54\x46\x4e",
    "typed-map": b"M\x07TreeMap\x01a\x90Z",
    "typed-map-type-ref": b"\x7a" + b"M\x07TreeMap\x01a\x90Z" + b"M\x90\x01b\x91Z",
    "untyped-map": b"H\x90\x91\x01k\x4eZ",
    "class-def-and-objects": b"C\x04User\x92\x04name\x03age" + b"\x60\x03bob\x97",
    "object-O-form": b"\x7a" + b"C\x01A\x90\x60" + b"O\x90",
    "two-class-defs-in-a-row": b"C\x01A\x90C\x01B\x91\x01f\x61\x90",
    "reference": b"\x7a\x78\x51\x90",
    "variable-lists": b"\x7a" + b"\x55\x04[int\x90\x91Z" + b"\x57\x90Z",
    "fixed-lists": b"\x7a" + b"\x56\x04[int\x92\x90\x91" + b"\x58\x91\x90",
    "compact-typed-list": b"\x72\x04[int\x90\x91",
    "nesting-at-the-limit": _nested_lists(MAX_DEPTH),
}

INVALID = {
    "reserved-0x40": b"\x40",
    "reserved-0x45": b"\x45",
    "reserved-0x47": b"\x47",
    "reserved-0x50": b"\x50",
    "Z-outside": b"Z",
    "truncated-string": b"\x05hel",
    "bad-utf8-lead": b"\x01\x80",
    "four-byte-crosses-length": b"\x01\xf0\x9f\x98\x80",
    "chunk-then-binary": b"R\x00\x01a\x21x",
    "binary-chunk-then-string": b"A\x00\x01z\x01a",
    "undefined-class": b"\x60",
    "O-undefined-class": b"O\x91",
    "list-count-beyond-bytes": b"X\xd4\x10\x00",
    "negative-list-count": b"X\x8f",
    "field-count-beyond-bytes": b"C\x01A\xd4\x10\x00",
    "unterminated-map": b"H\x01k",
    "nesting-beyond-the-limit": _nested_lists(MAX_DEPTH + 2),
    "int-expected-for-length": b"V\x04[int\x01x",
}


@pytest.fixture(scope="module")
def proto():
    return load(SPEC)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_values_are_skipped_alike(proto, name):
    frame = _request(VALID[name])
    reader = Reader(VALID[name])
    reader.skip_value()
    assert reader.pos == len(VALID[name])
    for engine in ("python", "cpp"):
        result = engines.decode_stream(proto, frame, "request", engine=engine)
        assert result.error is None, f"{engine}: {result.error}"
        assert result.frames[0]["metadata"]["k"] == "v", engine


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_values_are_refused_alike(proto, name):
    frame = _request(INVALID[name])
    for engine in ("python", "cpp"):
        result = engines.decode_stream(proto, frame, "request", engine=engine)
        assert result.error is not None and not result.frames, engine


def test_wire_formats_example_request(proto):
    """wire-formats §1.4: sayHello("world"), request id 1, body 136 bytes."""
    body = (b"\x052.0.2" + b"\x30\x21org.apache.dubbo.demo.DemoService" + b"\x050.0.0" + b"\x08sayHello"
            + b"\x12Ljava/lang/String;" + b"\x05world"
            + b"H\x04path\x30\x21org.apache.dubbo.demo.DemoService\x07timeout\x043000Z")
    assert len(body) == 136
    frame = b"\xda\xbb\xc2\x00" + struct.pack(">q", 1) + struct.pack(">i", 136) + body
    for engine in ("python", "cpp"):
        (got,) = engines.decode_stream(proto, frame, "request", engine=engine).frames
        assert got["operation_name"] == "org.apache.dubbo.demo.DemoService/sayHello"
        assert got["metadata"] == {"interface": "org.apache.dubbo.demo.DemoService", "method": "sayHello",
                                   "path": "org.apache.dubbo.demo.DemoService", "timeout": "3000",
                                   "x-codecgen-codec": "aeraki.meta_protocol.codec.dubbo"}


def test_wire_formats_example_response(proto):
    """wire-formats §1.5: a value with attachments (flag 4)."""
    body = b"\x94\x0bHello world" + b"H\x05dubbo\x052.0.2Z"
    frame = b"\xda\xbb\x02\x14" + struct.pack(">q", 1) + struct.pack(">i", len(body)) + body
    for engine in ("python", "cpp"):
        (got,) = engines.decode_stream(proto, frame, "response", engine=engine).frames
        assert (got["message_type"], got["response_status"], got["metadata"]) == ("Response", "Ok", {"dubbo": "2.0.2"})


def test_reader_limits_and_strings():
    assert Reader(b"R\x00\x01aS\x00\x02bc").read_string() == b"abc"
    assert Reader(b"\x02\xf0\x9f\x98\x80").read_string() == "\U0001F600".encode()
    with pytest.raises(Hessian2Error, match="nested deeper"):
        Reader(_nested_lists(MAX_DEPTH + 2)).skip_value()
    pairs, keys, at = Reader(b"M\x01T\x01a\x01bH\x01a\x01bZ\x90N\x01cZ").read_string_map()
    assert pairs == [(b"a", b"b")] and keys == [b"a"] and at == 17


def test_writing_strings_and_maps():
    assert encode_string(b"") == b"\x00"
    assert encode_string(b"a" * 31)[:1] == b"\x1f" and encode_string(b"a" * 32)[:2] == b"\x30\x20"
    assert encode_string(b"a" * 1024)[:3] == b"S\x04\x00"
    assert encode_string("\U0001F600".encode()) == b"\x02\xed\xa0\xbd\xed\xb8\x80"  # a surrogate pair
    assert encode_string(b"\xff") == b"\x01\xef\xbf\xbd"  # U+FFFD
    chunked = encode_string(b"x" * 0x8001)
    assert chunked[:3] == b"R\x80\x00" and chunked[3 + 0x8000:] == b"\x01x"
    assert encode_string_map([(b"k", b"v")]) == b"H\x01k\x01vZ"
    w = Writer()
    w.string(b"abc", chunks=[1])
    assert Reader(w.getvalue()).read_string() == b"abc"
