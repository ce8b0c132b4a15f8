"""ctypes binding of the harness shared library (harness/capi.cc, harness/buffer_probe.cc).

This module runs wherever the library is loaded: in the caller's process for unsanitized
builds, or inside the sanitizer worker (worker.py). It only converts arguments and parses the
serialized results (layout documented in harness/wire.h); policy lives in native.py.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

from .results import CallKind, CallResult, DecodeResult, Frame, MessageType, ResponseStatus

_u8p = ctypes.POINTER(ctypes.c_uint8)
_DIRECTIONS = {"request": 0, "response": 1}


class HarnessError(RuntimeError):
    """The harness library refused a call (bad factory name, malformed argument)."""


class _Reader:
    def __init__(self, blob: bytes):
        self._blob = blob
        self._pos = 0

    def _take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self._blob, self._pos)
        self._pos += struct.calcsize(fmt)
        return value

    def u8(self) -> int:
        return self._take("<B")

    def i32(self) -> int:
        return self._take("<i")

    def u64(self) -> int:
        return self._take("<Q")

    def raw(self) -> bytes:
        size = self._take("<I")
        value = self._blob[self._pos : self._pos + size]
        self._pos += size
        return value

    def text(self) -> str:
        return self.raw().decode("utf-8", errors="surrogateescape")

    def optional_text(self) -> str | None:
        return self.text() if self.u8() else None


def parse_decode(blob: bytes) -> DecodeResult:
    r = _Reader(blob)
    frames = []
    for _ in range(r._take("<I")):
        message_type = MessageType(r.i32())
        request_id, stream_id = r.u64(), r.u64()
        response_status = ResponseStatus(r.i32())
        header_size, body_size = r.u64(), r.u64()
        operation_name = r.text()
        strings = {}
        for _ in range(r._take("<I")):
            key = r.text()
            strings[key] = r.text()
        frames.append(
            Frame(message_type, request_id, stream_id, response_status, header_size, body_size,
                  operation_name, strings, r.raw())
        )
    error, violation = r.optional_text(), r.optional_text()
    return DecodeResult(frames, error, violation, r.u64(), r.u64(), r.u64())


def parse_call(blob: bytes) -> CallResult:
    r = _Reader(blob)
    return CallResult(CallKind(r.u8()), r.text(), r.raw())


def _mutation_blob(mutation: dict[str, str]) -> bytes:
    parts = [struct.pack("<I", len(mutation))]
    for key, value in mutation.items():
        for text in (key, value):
            data = text.encode()
            parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


def _direction(direction: str) -> int:
    try:
        return _DIRECTIONS[direction]
    except KeyError:
        raise ValueError(f"direction must be 'request' or 'response', not {direction!r}") from None


def _declare(lib: ctypes.CDLL) -> None:
    c = ctypes
    sigs = {
        "codecgen_open": ([c.c_char_p], c.c_void_p),
        "codecgen_close": ([c.c_void_p], None),
        "codecgen_last_error": ([], c.c_char_p),
        "codecgen_factories": ([], c.c_char_p),
        "codecgen_decode_stream": (
            [c.c_void_p, c.c_char_p, c.c_uint64, c.POINTER(c.c_uint64), c.c_uint64, c.c_int,
             c.POINTER(_u8p), c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_encode": (
            [c.c_void_p, c.c_char_p, c.c_uint64, c.c_int, c.c_char_p, c.c_uint64, c.c_int,
             c.POINTER(_u8p), c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_on_error": (
            [c.c_void_p, c.c_char_p, c.c_uint64, c.c_int, c.c_int, c.c_int, c.c_char_p,
             c.c_uint64, c.POINTER(_u8p), c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_heartbeat": (
            [c.c_void_p, c.c_char_p, c.c_uint64, c.c_int, c.POINTER(_u8p),
             c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_set_log_mode": ([c.c_int], None),
        "codecgen_bytes_copied": ([], c.c_uint64),
        "codecgen_reset_bytes_copied": ([], None),
        "codecgen_noop": ([c.c_void_p], c.c_int),
        "codecgen_buf_error": ([], c.c_char_p),
        "codecgen_buf_new": ([c.c_char_p, c.c_uint64], c.c_void_p),
        "codecgen_buf_free": ([c.c_void_p], None),
        "codecgen_buf_length": ([c.c_void_p], c.c_uint64),
        "codecgen_buf_slices": ([c.c_void_p], c.c_uint64),
        "codecgen_buf_bytes": ([c.c_void_p, c.POINTER(c.c_uint64)], _u8p),
        "codecgen_buf_add": ([c.c_void_p, c.c_char_p, c.c_uint64], c.c_int),
        "codecgen_buf_add_buffer": ([c.c_void_p, c.c_void_p], c.c_int),
        "codecgen_buf_prepend": ([c.c_void_p, c.c_char_p, c.c_uint64], c.c_int),
        "codecgen_buf_prepend_buffer": ([c.c_void_p, c.c_void_p], c.c_int),
        "codecgen_buf_move": ([c.c_void_p, c.c_void_p, c.c_int64], c.c_int),
        "codecgen_buf_drain": ([c.c_void_p, c.c_uint64], c.c_int),
        "codecgen_buf_copy_out": ([c.c_void_p, c.c_uint64, c.c_uint64, c.c_char_p], c.c_int),
        "codecgen_buf_linearize": (
            [c.c_void_p, c.c_uint32, c.POINTER(_u8p), c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_buf_search": (
            [c.c_void_p, c.c_char_p, c.c_uint64, c.c_uint64, c.c_int64, c.POINTER(c.c_int64)],
            c.c_int),
        "codecgen_buf_starts_with": ([c.c_void_p, c.c_char_p, c.c_uint64], c.c_int),
        "codecgen_buf_peek": (
            [c.c_void_p, c.c_int, c.c_int, c.c_int, c.c_int, c.c_uint64, c.POINTER(c.c_uint64)],
            c.c_int),
        "codecgen_buf_drain_int": (
            [c.c_void_p, c.c_int, c.c_int, c.c_int, c.c_int, c.POINTER(c.c_uint64)], c.c_int),
        "codecgen_buf_write_int": (
            [c.c_void_p, c.c_int, c.c_int, c.c_int, c.c_int, c.c_uint64], c.c_int),
    }
    for name, (argtypes, restype) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype


class BufferOpError(Exception):
    """A model buffer operation threw. ``kind`` is 'EnvoyException', 'assertion' or 'other'."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    def __reduce__(self):  # keeps the two fields when raised inside the sanitizer worker
        return (type(self), (self.kind, self.message))


_BUFFER_FAILURES = {1: "EnvoyException", 2: "assertion", 3: "other"}
_ORDERS = {"host": 0, "le": 1, "be": 2}


class Binding:
    """The harness library of one codec, loaded into the current process."""

    def __init__(self, library: str | Path, factory: str):
        self._lib = ctypes.CDLL(str(library))
        _declare(self._lib)
        self._handle = self._lib.codecgen_open(factory.encode())
        if not self._handle:
            known = self._lib.codecgen_factories().decode().split()
            raise HarnessError(
                f"{self._lib.codecgen_last_error().decode()} (registered: {known})"
            )
        self._out = _u8p()
        self._out_len = ctypes.c_uint64()

    # -- codec contract ------------------------------------------------------------------

    def _result(self) -> bytes:
        return ctypes.string_at(self._out, self._out_len.value)

    def _refs(self):
        return ctypes.byref(self._out), ctypes.byref(self._out_len)

    # The contract calls return the serialized result (parse with parse_decode / parse_call):
    # a worker then pickles plain bytes, which is several times cheaper than dataclasses.

    def decode_stream(self, data: bytes, chunks: list[int], direction: str) -> bytes:
        sizes = (ctypes.c_uint64 * len(chunks))(*chunks)
        rc = self._lib.codecgen_decode_stream(
            self._handle, data, len(data), sizes, len(chunks), _direction(direction), *self._refs()
        )
        self._check(rc)
        return self._result()

    def encode(self, frame: bytes, direction: str, mutation: dict[str, str], path: str) -> bytes:
        blob = _mutation_blob(mutation)
        rc = self._lib.codecgen_encode(
            self._handle, frame, len(frame), _direction(direction), blob, len(blob),
            _direction(path), *self._refs()
        )
        self._check(rc)
        return self._result()

    def on_error(self, frame: bytes | None, direction: str, error_type: int, message: str) -> bytes:
        text = message.encode()
        rc = self._lib.codecgen_on_error(
            self._handle, frame or b"", len(frame or b""), frame is not None,
            _direction(direction), error_type, text, len(text), *self._refs()
        )
        self._check(rc)
        return self._result()

    def heartbeat(self, frame: bytes, direction: str) -> bytes:
        rc = self._lib.codecgen_heartbeat(
            self._handle, frame, len(frame), _direction(direction), *self._refs()
        )
        self._check(rc)
        return self._result()

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise HarnessError(self._lib.codecgen_last_error().decode())

    # -- process-wide knobs -----------------------------------------------------------------

    def noop(self) -> int:
        return self._lib.codecgen_noop(self._handle)

    def set_log_mode(self, mode: int) -> None:
        self._lib.codecgen_set_log_mode(mode)

    def bytes_copied(self) -> int:
        return self._lib.codecgen_bytes_copied()

    def reset_bytes_copied(self) -> None:
        self._lib.codecgen_reset_bytes_copied()

    def factories(self) -> list[str]:
        return self._lib.codecgen_factories().decode().splitlines()

    # -- Buffer::OwnedImpl probe (handles are plain ints so they cross the worker pipe) -----

    def _buf(self, rc: int) -> None:
        if rc != 0:
            raise BufferOpError(_BUFFER_FAILURES[rc], self._lib.codecgen_buf_error().decode())

    def buf_new(self, data: bytes = b"") -> int:
        return self._lib.codecgen_buf_new(data, len(data))

    def buf_free(self, h: int) -> None:
        self._lib.codecgen_buf_free(h)

    def buf_length(self, h: int) -> int:
        return self._lib.codecgen_buf_length(h)

    def buf_slices(self, h: int) -> int:
        return self._lib.codecgen_buf_slices(h)

    def buf_bytes(self, h: int) -> bytes:
        size = ctypes.c_uint64()
        ptr = self._lib.codecgen_buf_bytes(h, ctypes.byref(size))
        return ctypes.string_at(ptr, size.value)

    def buf_add(self, h: int, data: bytes) -> None:
        self._buf(self._lib.codecgen_buf_add(h, data, len(data)))

    def buf_add_buffer(self, h: int, other: int) -> None:
        self._buf(self._lib.codecgen_buf_add_buffer(h, other))

    def buf_prepend(self, h: int, data: bytes) -> None:
        self._buf(self._lib.codecgen_buf_prepend(h, data, len(data)))

    def buf_prepend_buffer(self, h: int, other: int) -> None:
        self._buf(self._lib.codecgen_buf_prepend_buffer(h, other))

    def buf_move(self, h: int, other: int, length: int | None) -> None:
        self._buf(self._lib.codecgen_buf_move(h, other, -1 if length is None else length))

    def buf_drain(self, h: int, size: int) -> None:
        self._buf(self._lib.codecgen_buf_drain(h, size))

    def buf_copy_out(self, h: int, start: int, size: int) -> bytes:
        out = ctypes.create_string_buffer(size)
        self._buf(self._lib.codecgen_buf_copy_out(h, start, size, out))
        return out.raw

    def buf_linearize(self, h: int, size: int) -> tuple[bytes, int]:
        """The ``size`` bytes at the returned pointer, and the front slice length after."""
        ptr, front = _u8p(), ctypes.c_uint64()
        self._buf(self._lib.codecgen_buf_linearize(h, size, ctypes.byref(ptr), ctypes.byref(front)))
        return (ctypes.string_at(ptr, size) if ptr else b""), front.value

    def buf_search(self, h: int, needle: bytes, start: int, length: int | None) -> int:
        result = ctypes.c_int64()
        limit = -1 if length is None else length
        self._buf(self._lib.codecgen_buf_search(h, needle, len(needle), start, limit, ctypes.byref(result)))
        return result.value

    def buf_starts_with(self, h: int, data: bytes) -> bool:
        return bool(self._lib.codecgen_buf_starts_with(h, data, len(data)))

    @staticmethod
    def _int_shape(ctype: str) -> tuple[int, int]:
        signed = ctype.startswith("int")
        bits = int(ctype.removeprefix("u").removeprefix("int").removesuffix("_t"))
        return int(signed), bits // 8

    @staticmethod
    def _to_python(value: int, signed: int, type_size: int) -> int:
        value &= (1 << (8 * type_size)) - 1
        if signed and value >> (8 * type_size - 1):
            value -= 1 << (8 * type_size)
        return value

    def buf_peek(self, h: int, ctype: str, size: int, order: str, start: int) -> int:
        signed, type_size = self._int_shape(ctype)
        out = ctypes.c_uint64()
        self._buf(self._lib.codecgen_buf_peek(h, signed, type_size, size, _ORDERS[order], start, ctypes.byref(out)))
        return self._to_python(out.value, signed, type_size)

    def buf_drain_int(self, h: int, ctype: str, size: int, order: str) -> int:
        signed, type_size = self._int_shape(ctype)
        out = ctypes.c_uint64()
        self._buf(self._lib.codecgen_buf_drain_int(h, signed, type_size, size, _ORDERS[order], ctypes.byref(out)))
        return self._to_python(out.value, signed, type_size)

    def buf_write_int(self, h: int, ctype: str, size: int, order: str, value: int) -> None:
        signed, type_size = self._int_shape(ctype)
        raw = value & ((1 << 64) - 1)
        self._buf(self._lib.codecgen_buf_write_int(h, signed, type_size, size, _ORDERS[order], raw))

    def close(self) -> None:
        if self._handle:
            self._lib.codecgen_close(self._handle)
            self._handle = None
