"""Run a C++ codec compiled against the host model, the way meta-protocol-proxy would.

Typical use::

    from codecgen.hostmodel.native import NativeCodec, build_harness

    lib = build_harness(Path("out/awesomerpc"), "awesomerpc")      # ASan+UBSan, g++, c++17
    with NativeCodec(lib) as codec:
        result = codec.decode_stream(data, chunks=[1, 5, 7], direction="request")
        reply = codec.on_error(None, "request", ErrorType.RouteNotFound, "no route")

Where the library runs:

* Sanitized builds run in a worker process (worker.py) started with LD_PRELOAD set to the
  ASan runtime and libstdc++ (BuildInfo.preload), because an ASan library cannot be dlopen'ed
  into a plain Python, and without libstdc++ mapped at ASan start-up every C++ throw aborts
  ("real___cxa_throw" CHECK failure). The worker
  lives as long as the NativeCodec; a sanitizer report or signal kills only the worker and
  surfaces here as NativeCrash (the next call starts a new worker). A call that runs longer
  than ``timeout`` seconds (a codec looping forever) is killed the same way.
* Unsanitized builds are loaded with ctypes into this process (``isolate=False``), unless
  ``isolate=True`` is asked for.

Measured per-call cost (2-core box, awesomerpc, one 18-byte frame, best of 5 x 3000 calls):

    backend                         noop     decode_stream   on_error
    ctypes in process, g++ -O2      0.3 us   8.5 us          5.3 us
    worker, g++ -O2                 11.7 us  20.5 us         17.8 us
    worker, g++ ASan+UBSan          12.8 us  30.4 us         34.6 us
    worker, clang++ ASan+UBSan      13.4 us  33.1 us         40.4 us
    (rejected) standalone C++ exe
      over pipes, g++ ASan+UBSan    7.3 us   ~29 us          -

The standalone executable saves ~5 us of Python per round trip but nothing once the sanitized
codec runs, and would need a second serialization of every call, so the worker reuses the
ctypes binding instead. Either way a fuzzer gets ~30k sanitized decode runs per second per
core with no process spawn per call.
"""

from __future__ import annotations

from pathlib import Path

from .binding import BufferOpError, HarnessError, parse_call, parse_decode
from .build import BuildInfo, CompileError, build_harness, compile_only
from .process import InProcess, NativeCrash, Worker, asan_in_process
from .probe import ModelBuffer
from .results import CallKind, DecodeResult, ErrorType, Frame, MessageType, ResponseStatus

__all__ = [
    "BadInput", "BufferOpError", "CodecError", "CompileError", "ContractViolation",
    "DecodeResult", "ErrorType", "Frame", "HarnessError", "MessageType", "ModelBuffer",
    "NativeCodec", "NativeCrash", "ResponseStatus", "build_harness", "compile_only",
]

LOG_MODES = {"off": 0, "check": 1, "print": 2}


class CodecError(Exception):
    """encode/onError threw an EnvoyException (the framework would catch and log it)."""


class ContractViolation(AssertionError):
    """The codec broke a rule of the framework contract (a bug in the codec)."""


class BadInput(ValueError):
    """The frame given to encode/on_error/heartbeat is not exactly one decodable frame."""


_RAISE = {CallKind.CodecError: CodecError, CallKind.Violation: ContractViolation,
          CallKind.BadInput: BadInput}


def _output(blob: bytes) -> bytes:
    result = parse_call(blob)
    if result.kind is not CallKind.Ok:
        raise _RAISE[result.kind](result.message)
    return result.output


class NativeCodec:
    """A codec inside its harness library. See the module docstring for where it runs.

    :param library: a path returned by build_harness (its BuildInfo sits next to it).
    :param factory: the registered factory name; defaults to the one the library was built for.
    :param isolate: run in a worker process; defaults to True exactly for sanitized builds.
    :param timeout: seconds a worker call may take before the worker is killed.
    """

    def __init__(self, library: Path, *, factory: str | None = None,
                 isolate: bool | None = None, timeout: float = 60.0):
        self.library = Path(library)
        self.info = BuildInfo.of(library)
        factory = factory or self.info.factory
        needs_runtime = self.info.sanitize and not asan_in_process()
        if isolate is None:
            isolate = needs_runtime
        if not isolate and needs_runtime:
            raise ValueError("a sanitized library can only run in-process under LD_PRELOAD="
                             f"{':'.join(self.info.preload)}; use isolate=True")
        preload = ":".join(self.info.preload) if needs_runtime else None
        self._backend = Worker(library, factory, preload, timeout) if isolate \
            else InProcess(library, factory)
        self.isolated = isolate

    @classmethod
    def build(cls, codec_dir: Path, name: str, **build_options) -> "NativeCodec":
        """build_harness(codec_dir, name, **build_options), then load it."""
        return cls(build_harness(codec_dir, name, **build_options))

    def decode_stream(self, data: bytes, chunks: list[int], direction: str) -> DecodeResult:
        """Feed ``data`` into one connection buffer in reads of the given sizes (bytes left
        over after the listed chunks arrive as one last read) and decode after each read."""
        if any(c < 0 for c in chunks) or sum(chunks) > len(data):
            raise ValueError("chunks must be non-negative and add up to at most len(data)")
        return parse_decode(self._backend.call("decode_stream", bytes(data), list(chunks), direction))

    def encode(self, frame: bytes, direction: str, mutation: dict[str, str], path: str) -> bytes:
        """Decode ``frame`` then encode it on the request path (a new codec, the frame moved
        out of originMessage() into a separate buffer) or the response path (the decoding
        codec, buffer is originMessage())."""
        return _output(self._backend.call("encode", bytes(frame), direction, dict(mutation), path))

    def on_error(self, frame: bytes | None, direction: str, error_type: int, message: str) -> bytes:
        """Local reply for ``frame``'s metadata, or for a fresh empty metadata if None."""
        if not 0 <= int(error_type) <= 5:
            raise ValueError(f"error_type must be in 0..5, not {error_type}")
        frame = None if frame is None else bytes(frame)
        return _output(self._backend.call("on_error", frame, direction, int(error_type), message))

    def heartbeat(self, frame: bytes, direction: str) -> bytes:
        """Encode with the decoded metadata's type set to Heartbeat, an empty mutation and an
        empty buffer; returns the reply bytes."""
        return _output(self._backend.call("heartbeat", bytes(frame), direction))

    # -- knobs and test hooks -------------------------------------------------------------

    def set_log_mode(self, mode: str) -> None:
        """'off', 'check' (format ENVOY_LOG messages and drop them; default) or 'print'."""
        self._backend.call("set_log_mode", LOG_MODES[mode])

    def bytes_copied(self) -> int:
        """Bytes the model's buffers copied since the last reset (see buffer_impl.h)."""
        return self._backend.call("bytes_copied")

    def reset_bytes_copied(self) -> None:
        self._backend.call("reset_bytes_copied")

    def noop(self) -> None:
        """One empty call through the backend, to measure its overhead."""
        self._backend.call("noop")

    def buffer(self, data: bytes = b"") -> ModelBuffer:
        """A Buffer::OwnedImpl of the model living next to the codec (for buffer tests)."""
        return ModelBuffer(self._backend, data)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "NativeCodec":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
