"""Sanitizer worker: hosts a sanitized harness library in its own Python process.

An ASan-instrumented shared library can only be loaded into a process whose first loaded
object is the ASan runtime, so native.py starts this module with ``LD_PRELOAD`` set to the
runtime the library was built against. The worker then loads the library through the same
ctypes Binding used in-process and serves calls over its stdin/stdout:

    request:  u64 length + pickle((method_name, args))
    reply:    u64 length + pickle(("ok", result) | ("raise", exception))

A sanitizer report kills the worker (``halt_on_error``); the parent sees EOF, reads the report
from the worker's stderr file and raises NativeCrash. Stray writes to fd 1 by the codec are
redirected to stderr so they cannot corrupt the protocol.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys

_LENGTH = struct.Struct("<Q")


def read_message(fd: int):
    header = _read_exactly(fd, _LENGTH.size)
    if header is None:
        return None
    (size,) = _LENGTH.unpack(header)
    payload = _read_exactly(fd, size)
    if payload is None:
        raise EOFError("truncated message")
    return pickle.loads(payload)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_message(fd: int, message) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    data = _LENGTH.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def serve(library: str, factory: str) -> int:
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # the codec's stray stdout goes to stderr
    from codecgen.hostmodel.binding import Binding

    try:
        binding = Binding(library, factory)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        write_message(reply_fd, ("raise", _picklable(exc)))
        return 1
    write_message(reply_fd, ("ok", "ready"))
    while (request := read_message(0)) is not None:
        method, args = request
        try:
            write_message(reply_fd, ("ok", getattr(binding, method)(*args)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            write_message(reply_fd, ("raise", _picklable(exc)))
    binding.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2]))
