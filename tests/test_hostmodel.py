"""Tests of the host model (codecgen/hostmodel): buffer semantics, the compile matrix of the
hand-written awesomerpc codec, and the harness replaying the framework contract over it.

Builds go through the normal cache (CODECGEN_CACHE or ~/.cache/codecgen), so only the first
run compiles; every library is built once per session by a fixture.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from codecgen.hostmodel.build import default_cache_dir, toolchain
from codecgen.hostmodel.native import (BadInput, BufferOpError, CompileError,
                                       ContractViolation, ErrorType, HarnessError, MessageType,
                                       NativeCodec, NativeCrash, build_harness, compile_only)

AWESOMERPC = Path(__file__).parent / "handwritten" / "awesomerpc"
MAX_PACK_LEN = 16 * 1024 * 1024


def frame(request_id: int, cmd: int, body: bytes = b"", *, pack_len: int | None = None,
          rsp_code: int = 0, version: int = 1) -> bytes:
    """An awesomerpc frame: version u8, pack_flow u32, pack_len u32, req_cmd i16, rsp_code i16."""
    length = 13 + len(body) if pack_len is None else pack_len
    return struct.pack(">BIIhh", version, request_id, length, cmd, rsp_code) + body


def installed(compiler: str) -> bool:
    try:
        toolchain(compiler)
        return True
    except FileNotFoundError:
        return False


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def plain() -> NativeCodec:
    """awesomerpc, unsanitized, loaded into this process (fast; used for buffer tests)."""
    with NativeCodec(build_harness(AWESOMERPC, "awesomerpc", sanitize=False)) as codec:
        yield codec


@pytest.fixture(scope="session")
def codec() -> NativeCodec:
    """awesomerpc under ASan+UBSan (g++), in a sanitizer worker process."""
    with NativeCodec(build_harness(AWESOMERPC, "awesomerpc")) as native:
        assert native.isolated
        yield native


def _variant(name: str, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the hand-written codec with text edits, at a stable path so builds cache."""
    target = default_cache_dir() / "test-variants" / name
    target.mkdir(parents=True, exist_ok=True)
    for source in AWESOMERPC.iterdir():
        text = source.read_text()
        for old, new in edits.get(source.name, []):
            assert text.count(old) == 1, f"{source.name} no longer contains {old!r}"
            text = text.replace(old, new)
        if not (target / source.name).exists() or (target / source.name).read_text() != text:
            (target / source.name).write_text(text)
    return target


# Each misbehaviour is selected by the frame's req_cmd so that one build covers them all.
BROKEN_EDITS = {
    "awesomerpc_codec.cc": [
        ("#include <string>\n", "#include <limits>\n#include <memory>\n#include <stdexcept>\n"
                                "#include <string>\n"),
        ("  frame_.move(buffer, header_.pack_len);\n",
         "  if (header_.req_cmd == 1) { // copies the frame but forgets to drain it\n"
         "    frame_.add(buffer.linearize(header_.pack_len), header_.pack_len);\n"
         "  } else if (header_.req_cmd == 2) { // drains the frame and loses it\n"
         "    buffer.drain(header_.pack_len);\n"
         "  } else {\n"
         "    frame_.move(buffer, header_.pack_len);\n"
         "  }\n"),
        ("  header_.peek(buffer);\n",
         "  header_.peek(buffer);\n"
         "  if (header_.req_cmd == 3) {\n"
         "    throw std::out_of_range(\"cmd 3\");\n"
         "  }\n"
         "  if (header_.req_cmd == 4) {\n"
         "    std::unique_ptr<uint8_t[]> small(new uint8_t[4]());\n"
         "    volatile uint8_t past = small[header_.req_cmd];\n"
         "    (void)past;\n"
         "  }\n"
         "  if (header_.req_cmd == 5) {\n"
         "    int big = std::numeric_limits<int>::max() - header_.rsp_code;\n"
         "    volatile int sum = big + header_.req_cmd;\n"
         "    (void)sum;\n"
         "  }\n"
         "  if (header_.req_cmd == 6) {\n"
         "    ENVOY_LOG(debug, \"cmd {} and {}\", header_.req_cmd);\n"
         "  }\n"
         "  for (volatile bool spin = true; header_.req_cmd == 7; spin = !spin) {\n"
         "  }\n"),
        ("  AwesomerpcHeader reply;\n",
         "  if (error.message == \"disturb\") {\n"
         "    decode_status_ = AwesomerpcDecodeStatus::DecodePayload;\n"
         "    header_.pack_len = 1;\n"
         "  }\n"
         "  AwesomerpcHeader reply;\n"),
    ],
}


@pytest.fixture(scope="session")
def broken() -> NativeCodec:
    """The codec with deliberate contract breaches and memory errors, sanitized."""
    with NativeCodec(build_harness(_variant("broken", BROKEN_EDITS), "awesomerpc")) as native:
        yield native


# -- buffer semantics -------------------------------------------------------------------------

INT_TYPES = ["uint8_t", "int8_t", "uint16_t", "int16_t", "uint32_t", "int32_t", "uint64_t",
             "int64_t"]
INT_SHAPES = [(t, size) for t in INT_TYPES for size in range(1, int(t.strip("uint_t")) // 8 + 1)]


@pytest.mark.parametrize("order", ["be", "le"])
@pytest.mark.parametrize("ctype,size", INT_SHAPES)
def test_peek_reads_and_sign_extends_every_shape(plain, ctype, size, order):
    data = bytes([0x81, 0xFE, 0x7F, 0x80, 0x01, 0xFF, 0x92, 0xC3, 0x55])
    buf = plain.buffer(data)
    signed = ctype.startswith("int")
    for start in range(len(data) - size + 1):
        raw = data[start : start + size]
        expected = int.from_bytes(raw, "big" if order == "be" else "little", signed=signed)
        assert buf.peek(ctype, size, order, start) == expected, (start, raw)
    assert len(buf) == len(data)  # peeks never consume


def test_odd_size_sign_extension(plain):
    buf = plain.buffer(b"\xff\xff\xfe\x80")
    assert buf.peek("int32_t", 3, "be") == -2
    assert buf.peek("uint32_t", 3, "be") == 0xFFFFFE
    assert buf.peek("int32_t", 3, "le", 1) == int.from_bytes(b"\xff\xfe\x80", "little", signed=True)
    assert buf.peek("int64_t", 1, "be", 3) == -128


@pytest.mark.parametrize("start,size", [(0, 8), (4, 2), (5, 1), (2, 4), (6, 1)])
def test_peek_past_the_end_throws_buffer_underflow(plain, start, size):
    buf = plain.buffer(b"\x01\x02\x03\x04\x05")
    with pytest.raises(BufferOpError) as info:
        buf.peek("uint64_t", size, "be", start)
    assert (info.value.kind, info.value.message) == ("EnvoyException", "buffer underflow")


def test_peek_at_the_last_byte_is_allowed(plain):
    assert plain.buffer(b"\x01\x02\x03\x04\x05").peek("uint32_t", 4, "be", 1) == 0x02030405


@pytest.mark.parametrize("ctype,size,order,value,encoded", [
    ("int32_t", 3, "be", -2, b"\xff\xff\xfe"),
    ("uint32_t", 3, "le", 0x010203, b"\x03\x02\x01"),
    ("int16_t", 2, "be", -3, b"\xff\xfd"),
    ("uint64_t", 8, "be", 0x0102030405060708, bytes(range(1, 9))),
    ("uint8_t", 1, "be", 0xAB, b"\xab"),
])
def test_write_int_then_drain_int(plain, ctype, size, order, value, encoded):
    buf = plain.buffer()
    buf.write_int(ctype, size, order, value)
    assert bytes(buf) == encoded
    buf.add(b"tail")
    assert buf.drain_int(ctype, size, order) == value
    assert bytes(buf) == b"tail"


def test_move_transfers_a_64k_frame_without_copying(plain):
    src = plain.buffer(b"F" * 65536 + b"next frame")
    dst = plain.buffer(b"head")
    plain.reset_bytes_copied()
    dst.move(src, 65536)
    assert plain.bytes_copied() == 0
    assert len(src) == len(b"next frame") and bytes(src) == b"next frame"
    assert bytes(dst) == b"head" + b"F" * 65536
    plain.reset_bytes_copied()
    dst.move(src)
    assert plain.bytes_copied() == 0
    assert len(src) == 0 and bytes(dst).endswith(b"Fnext frame")


def test_move_more_than_buffered_is_a_model_assertion(plain):
    with pytest.raises(BufferOpError) as info:
        plain.buffer(b"ab").move(plain.buffer(b"xyz"), 4)
    assert info.value.kind == "assertion"


def test_add_buffer_copies_and_keeps_the_source(plain):
    src, dst = plain.buffer(b"abc"), plain.buffer(b"1")
    plain.reset_bytes_copied()
    dst.add(src)
    assert plain.bytes_copied() == 3
    assert (bytes(dst), bytes(src)) == (b"1abc", b"abc")


def test_prepend_string_and_buffer(plain):
    buf = plain.buffer(b"body")
    buf.prepend(b"hdr:")
    other = plain.buffer(b"[")
    other.add(b"0]")
    buf.prepend(other)
    assert bytes(buf) == b"[0]hdr:body"
    assert len(other) == 0  # prepend(Instance&) drains its argument


def _sliced(plain, *parts: bytes):
    """A buffer whose slices are exactly ``parts`` (moving whole buffers keeps slices)."""
    buf = plain.buffer()
    for part in parts:
        buf.move(plain.buffer(part))
    assert buf.slices() == len(parts)
    return buf


def test_search_across_slices_with_and_without_a_window(plain):
    buf = _sliced(plain, b"xxab", b"cdxx", b"abcd")
    assert buf.search(b"abcd", 0) == 2  # spans the first two slices
    assert buf.search(b"abcd", 3) == 8
    assert buf.search(b"abcd", 0, 6) == 2  # fits the window [0, 6)
    assert buf.search(b"abcd", 0, 5) == -1  # a match must end inside the window
    assert buf.search(b"abcd", 3, 9) == 8
    assert buf.search(b"zz", 0) == -1
    assert buf.search(b"", 12) == 12 and buf.search(b"", 13) == -1
    assert buf.search(b"d", 12) == -1


def test_linearize_coalesces_the_front_slices(plain):
    buf = _sliced(plain, b"ab", b"cd", b"ef")
    plain.reset_bytes_copied()
    data, front = buf.linearize(3)
    assert data == b"abc" and front >= 3
    assert plain.bytes_copied() == 4  # the two slices covering 3 bytes were merged
    plain.reset_bytes_copied()
    assert buf.linearize(2)[0] == b"ab" and plain.bytes_copied() == 0  # already contiguous
    assert bytes(buf) == b"abcdef"
    with pytest.raises(BufferOpError) as info:
        buf.linearize(7)
    assert info.value.kind == "assertion"


def test_drain_copy_out_and_starts_with(plain):
    buf = _sliced(plain, b"012", b"345", b"678")
    assert buf.copy_out(2, 5) == b"23456"
    assert buf.starts_with(b"0123") and not buf.starts_with(b"013")
    buf.drain(4)
    assert bytes(buf) == b"45678" and buf.starts_with(b"45678")
    assert not buf.starts_with(b"456789")
    for operation in (lambda: buf.drain(6), lambda: buf.copy_out(3, 3)):
        with pytest.raises(BufferOpError) as info:
            operation()
        assert info.value.kind == "assertion"


# -- compile matrix ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("target", ["1.4.2", "head"])
@pytest.mark.parametrize("std", ["c++17", "c++20"])
@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_handwritten_codec_compiles_with_envoy_warnings(compiler, std, target):
    if not installed(compiler):
        pytest.skip(f"{compiler} is not installed")
    objects = compile_only(AWESOMERPC, "awesomerpc", compiler, std, target)
    assert {o.suffix for o in objects} == {".o"} and len(objects) == 3


def test_a_warning_is_a_compile_error_pointing_at_the_codec_file():
    edits = {"awesomerpc_codec.cc": [
        ("  toMetadata(metadata);\n", "  int unused_count = 0;\n  toMetadata(metadata);\n")]}
    source = _variant("warning", edits)
    with pytest.raises(CompileError) as info:
        compile_only(source, "awesomerpc")
    text = "\n".join(info.value.first_errors)
    assert "unused_count" in text and str(source / "awesomerpc_codec.cc") in text


# -- the harness over the hand-written codec ---------------------------------------------------


def test_one_frame_decodes_at_every_split_point(codec):
    data = frame(0xDEADBEEF, 42, b"hello")
    for split in range(len(data) + 1):
        result = codec.decode_stream(data, [split], "request")
        assert (result.error, result.violation, result.held, result.pending) == (None, None, 0, 0)
        [only] = result.frames
        assert only.data == data and only.request_id == 0xDEADBEEF
        assert only.message_type is MessageType.Request
        assert only.strings == {"cmd": "42"}
        assert (only.header_size, only.body_size) == (13, 5)


def test_three_frames_decode_at_every_pair_of_split_points(codec):
    frames = [frame(1, -3), frame(2, 7, b"ab"), frame(3, 32767, b"xyz")]
    data = b"".join(frames)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            result = codec.decode_stream(data, [first, second - first], "response")
            assert result.violation is None and result.error is None
            assert [f.data for f in result.frames] == frames, (first, second)
            assert [f.strings["cmd"] for f in result.frames] == ["-3", "7", "32767"]
            assert {f.message_type for f in result.frames} == {MessageType.Response}


def test_byte_by_byte_leaves_a_partial_frame_in_the_buffer(codec):
    data = frame(1, 1, b"abc") + frame(2, 2, b"de")[:9]
    result = codec.decode_stream(data, [1] * len(data), "request")
    assert [f.request_id for f in result.frames] == [1]
    assert (result.held, result.pending, result.error) == (9, 0, None)


def test_oversize_and_undersize_frames_are_refused(codec):
    good = frame(5, 1)
    result = codec.decode_stream(good + frame(6, 1, pack_len=MAX_PACK_LEN + 1), [], "request")
    assert [f.request_id for f in result.frames] == [5]
    assert "exceeds" in result.error and result.violation is None
    assert result.held == 13  # the bad header is still buffered
    assert "shorter" in codec.decode_stream(frame(7, 1, pack_len=12), [], "request").error


def test_the_largest_frame_is_awaited_not_refused(codec):
    result = codec.decode_stream(frame(8, 1, pack_len=MAX_PACK_LEN), [], "request")
    assert (result.frames, result.error, result.held) == ([], None, 13)


def test_decode_moves_a_64k_frame_without_copying_it(codec):
    body = bytes(range(256)) * 256
    result = codec.decode_stream(frame(9, 3, body), [4096] * 16, "request")
    assert result.frames[0].body_size == len(body)
    assert result.copied < 200  # only the peeked headers, never the 64 KiB body


@pytest.mark.parametrize("error_type", list(ErrorType))
def test_on_error_echoes_the_request_id(codec, error_type):
    reply = codec.on_error(frame(0xCAFEF00D, 12, b"req"), "request", error_type, "no route")
    version, flow, length, cmd, code = struct.unpack(">BIIhh", reply)
    assert (flow, length, code) == (0xCAFEF00D, 13, 1)


def test_on_error_works_with_empty_metadata(codec):
    reply = codec.on_error(None, "request", ErrorType.BadResponse, "request ID is not equal")
    assert len(reply) == 13 and struct.unpack(">BIIhh", reply)[1:3] == (0, 13)


@pytest.mark.parametrize("path", ["request", "response"])
def test_encode_with_a_mutation_is_a_pass_through(codec, path):
    data = frame(11, 4, b"payload")
    mutation = {"x-request-id": "abc", "x-envoy-peer-metadata": "Zm9v"}
    direction = "response" if path == "response" else "request"
    assert codec.encode(data, direction, mutation, path) == data


def test_heartbeat_writes_nothing_for_awesomerpc(codec):
    assert codec.heartbeat(frame(12, 1), "request") == b""


def test_encode_refuses_input_that_is_not_one_frame(codec):
    with pytest.raises(BadInput):
        codec.encode(frame(1, 1) + frame(2, 2), "request", {}, "request")
    with pytest.raises(BadInput):
        codec.encode(frame(1, 1)[:5], "request", {}, "request")


def test_unknown_factory_name_lists_the_registered_ones():
    lib = build_harness(AWESOMERPC, "awesomerpc", sanitize=False)
    with pytest.raises(HarnessError, match="aeraki.meta_protocol.codec.awesomerpc"):
        NativeCodec(lib, factory="aeraki.meta_protocol.codec.nope")


@pytest.mark.skipif(not installed("clang++"), reason="clang++ is not installed")
def test_clang_sanitized_harness_runs(plain):
    with NativeCodec(build_harness(AWESOMERPC, "awesomerpc", compiler="clang++",
                                   std="c++20")) as native:
        data = frame(3, 9, b"z") * 2
        assert len(native.decode_stream(data, [5], "request").frames) == 2
        assert struct.unpack(">BIIhh", native.on_error(data[:14], "request", 0, ""))[1] == 3
        # a C++ throw inside the worker (needs libstdc++ preloaded next to the ASan runtime)
        assert "exceeds" in native.decode_stream(frame(4, 1, pack_len=1 << 30), [], "request").error


# -- broken codecs are reported, not trusted ---------------------------------------------------


def test_done_without_draining_is_a_violation(broken):
    result = broken.decode_stream(frame(1, 1), [], "request")
    assert "without consuming" in result.violation and result.frames == []


def test_lost_frame_bytes_are_a_violation(broken):
    result = broken.decode_stream(frame(1, 0) + frame(2, 2, b"ab"), [], "request")
    assert [f.request_id for f in result.frames] == [1]
    assert "bytes not conserved" in result.violation


def test_a_non_envoy_exception_is_a_violation(broken):
    result = broken.decode_stream(frame(1, 3), [], "request")
    assert result.error is None
    assert "std::out_of_range" in result.violation and "EnvoyException" in result.violation


def test_a_log_format_string_without_its_arguments_is_a_violation(broken):
    assert "format_error" in broken.decode_stream(frame(1, 6), [], "request").violation


def test_on_error_that_disturbs_decoding_is_a_violation(broken):
    with pytest.raises(ContractViolation, match="disturbed the decode state"):
        broken.on_error(frame(1, 0), "request", 0, "disturb")
    assert len(broken.on_error(frame(1, 0), "request", 0, "fine")) == 13


@pytest.mark.parametrize("cmd,report", [(4, "heap-buffer-overflow"),
                                        (5, "signed integer overflow")])
def test_sanitizers_catch_memory_and_ub_errors(broken, cmd, report):
    with pytest.raises(NativeCrash) as info:
        broken.decode_stream(frame(1, cmd, rsp_code=0), [], "request")
    assert report in info.value.report
    assert len(broken.decode_stream(frame(2, 0), [], "request").frames) == 1  # worker restarted


def test_a_codec_that_never_returns_is_killed_after_the_timeout(broken):
    with NativeCodec(Path(broken.library), timeout=0.5) as impatient:
        with pytest.raises(NativeCrash, match="timed out"):
            impatient.decode_stream(frame(1, 7), [], "request")
        assert len(impatient.decode_stream(frame(2, 0), [], "request").frames) == 1
