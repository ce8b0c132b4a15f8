"""What a protocol author writes: ``PROTOCOL = Protocol(...)`` beside a construct frame.

Roles name fields by dotted path (``"header.request_id"``) and use construct's
own ``this`` expressions for conditions (``this.flags.event``,
``this.status != 20``).  Nothing here interprets construct: the frontend does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from codecgen.ir import ErrorType, MessageType, Render

__all__ = [
    "DIRECTION",
    "REQUEST",
    "RESPONSE",
    "Protocol",
    "When",
    "Key",
    "HeaderMap",
    "Heartbeat",
    "RequestId",
    "ErrorCode",
    "ErrorMessage",
    "FromMetadata",
    "REQUEST_ID",
    "ERROR_MESSAGE",
    "MessageType",
    "ErrorType",
    "Render",
    "DEFAULT_DROP_KEYS",
    "DEFAULT_DROP_PREFIXES",
]

from construct import this as _this

# The direction a frame travels, for layouts that differ between requests and responses
# (Kafka): ``If(DIRECTION == REQUEST, ...)`` in the frame's top-level Struct.  Decode knows it
# from the framework (downstream: request), encode from the message type, replies are responses.
DIRECTION = _this._._direction
REQUEST = 0
RESPONSE = 1

DEFAULT_DROP_KEYS = ("x-envoy-peer-metadata", "x-envoy-peer-metadata-id")
DEFAULT_DROP_PREFIXES = ("x-meta-protocol-",)
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class When:
    """``When(this.flags.event, MessageType.Heartbeat)``: first true rule wins."""

    cond: Any
    type: MessageType


@dataclass(frozen=True)
class Key:
    """A routing key's source field and rendering (see ``codecgen.ir.Render``).  A string or bytes
    field that is empty publishes no key (as tshark shows no field) unless ``publish_empty``."""

    field: str
    render: Optional[Render] = None
    publish_empty: bool = False


@dataclass(frozen=True)
class HeaderMap:
    """The key/value array field that mutations rewrite."""

    field: str
    key: str = "key"
    value: str = "value"


@dataclass(frozen=True)
class RequestId:
    """Reply value: the request id from the metadata (0 when absent)."""


@dataclass(frozen=True)
class ErrorMessage:
    """Reply value: ``error.message``."""


@dataclass(frozen=True)
class ErrorCode:
    """Reply value: the protocol's status code for each Aeraki ``ErrorType``."""

    codes: Mapping[ErrorType, int] = field(default_factory=dict)
    default: int = 0


@dataclass(frozen=True)
class FromMetadata:
    """Reply value: ``metadata.getString(key)``, or ``default`` when empty."""

    key: str
    default: Union[str, bytes, int] = ""


REQUEST_ID = RequestId()
ERROR_MESSAGE = ErrorMessage()


@dataclass(frozen=True)
class Heartbeat:
    """A frame for which ``when`` is true is a heartbeat; ``reply`` builds the answer."""

    when: Any
    reply: Mapping[str, Any]


@dataclass
class Protocol:
    """A protocol spec.  See ``codecgen new`` for a commented example."""

    name: str
    frame: Any
    request_id: Optional[str] = None
    message_type: Sequence[When] = ()
    response_error: Any = None
    routing_keys: Mapping[str, Union[str, Key]] = field(default_factory=dict)
    operation_name: Optional[str] = None
    body: Optional[str] = None
    headers: Optional[HeaderMap] = None
    fixed_headers: Mapping[str, str] = field(default_factory=dict)
    drop_keys: Sequence[str] = DEFAULT_DROP_KEYS
    drop_prefixes: Sequence[str] = DEFAULT_DROP_PREFIXES
    error_reply: Mapping[str, Any] = field(default_factory=dict)
    heartbeat: Optional[Heartbeat] = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_array_count: int = 1024
    # Field values every sample request carries, for `codecgen call`/`probe` (sample clients):
    # e.g. Dubbo's {"flag.req": 1, "flag.twoway": 1}.  Not part of the codec.
    sample_request: Mapping[str, Any] = field(default_factory=dict)
    # Field values that make a request into a response, for `codecgen serve` (sample servers):
    # e.g. {"flags.response": 1}.  Not part of the codec.
    sample_response: Mapping[str, Any] = field(default_factory=dict)
    # Field values that make a request a heartbeat, for sample clients and `image verify`.
    sample_heartbeat: Mapping[str, Any] = field(default_factory=dict)
    # True: the spec takes the names of one of meta-protocol-proxy's built-in codecs (dubbo,
    # thrift, ...) on purpose, and `codecgen image` puts the generated codec in its place.
    # False (the default): such a spec is refused (see codecgen.builtins).
    replaces_builtin: bool = False
    doc: str = ""
