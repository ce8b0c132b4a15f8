"""Plain result types shared by the in-process binding and the sanitizer worker (picklable)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# The framework's enums are facts of codec.h kept once, in the IR.
from codecgen.ir import ErrorType, MessageType  # noqa: F401  (re-exported)


class ResponseStatus(enum.IntEnum):
    Ok = 0
    Error = 1


@dataclass
class Frame:
    """One frame a codec decoded (one ``Done``), as the metadata describes it."""

    message_type: MessageType
    request_id: int
    stream_id: int
    response_status: ResponseStatus
    header_size: int
    body_size: int
    operation_name: str
    strings: dict[str, str]  # putString keys exactly as given, in first-insertion order
    data: bytes  # the bytes the codec moved into originMessage()


@dataclass
class DecodeResult:
    """What a decode_stream run produced.

    ``error`` is the text of an EnvoyException thrown by decode (the framework closes the
    connection), ``violation`` a broken rule of the framework contract (a codec bug),
    ``held`` the bytes still in the connection buffer, ``pending`` the bytes the codec has
    consumed since its last Done (kept in its own state) and ``copied`` the bytes the model's
    buffers copied while decode ran (0 for a codec that only peeks headers and moves frames,
    apart from the peeked header bytes).
    """

    frames: list[Frame] = field(default_factory=list)
    error: str | None = None
    violation: str | None = None
    held: int = 0
    pending: int = 0
    copied: int = 0


class CallKind(enum.IntEnum):
    Ok = 0
    CodecError = 1
    Violation = 2
    BadInput = 3


@dataclass
class CallResult:
    """Outcome of an encode / onError / heartbeat call."""

    kind: CallKind
    message: str
    output: bytes
