"""trpcunary: tRPC's unary frames (trpc-group), the header a protobuf message.

One frame, big-endian (wire-formats §7)::

    magic 0x0930 | data frame type u8 (0 unary) | stream frame type u8 | total size u32
    (the whole frame) | header size u16 | stream id u32 | protocol version u8 | reserved u8
    | header: trpc.RequestProtocol / trpc.ResponseProtocol (protobuf) | body (+ attachment)

The header is a protobuf extension field (``codecgen.ext.protobuf``) generated from
``trpc.proto`` beside this file: both engines read the fields below at the wire level, and a
mutation appends ``trans_info`` entries, so the header size and the total size are rebuilt and
the body is moved, not copied.

Roles: request id = the header's ``request_id`` (uint32); routing keys ``caller``, ``callee``,
``func`` and every ``trans_info`` entry (the mutable header map); operation name = ``func``;
a request with ``call_type`` 1 is Oneway; a response with ``ret`` or ``func_ret`` not 0 has
ResponseStatus Error.

Error reply: a unary frame, stream id = the request id, protocol version 1, and a
ResponseProtocol with the request id, ``ret`` 11 SERVER_NOSERVICE (RouteNotFound,
ClusterNotFound), 22 SERVER_OVERLOAD (NoHealthyUpstream), 23 SERVER_LIMITED (OverLimit) or 31
SERVER_SYSTEM, and ``error_msg``; no body.

Not covered: streaming frames (data frame type 1) are refused: their header is another message
(TrpcStreamInitMeta, ...) and their routing needs the stream's INIT, which MetaProtocol's
one-request-one-response model does not follow. Named ``trpcunary``, not ``trpc``:
meta-protocol-proxy ships a built-in codec named ``trpc`` (see protocols/README.md).
"""

from pathlib import Path

from construct import Bytes, Const, Int8ub, Int16ub, Int32ub, Rebuild, Struct, len_, this

from codecgen import (DIRECTION, ERROR_MESSAGE, REQUEST, REQUEST_ID, ErrorCode, ErrorType, HeaderMap,
                      MessageType, Protocol, When)
from codecgen.ext.protobuf import protobuf_header

FIXED = 16  # the frame header's bytes
MAX_FRAME = 10 * 1024 * 1024  # trpc-go's default limit on the total size

TrpcHeader = protobuf_header(
    "trpc_header", Path(__file__).with_name("trpc.proto"),
    request="trpc.RequestProtocol", response="trpc.ResponseProtocol",
    outputs={"request_id": "request_id", "call_type": "call_type", "caller": "caller",
             "callee": "callee", "func": "func", "ret": "ret", "func_ret": "func_ret"},
    header_map="trans_info",
    error={"request_id": REQUEST_ID,
           "ret": ErrorCode(default=31, codes={ErrorType.RouteNotFound: 11, ErrorType.ClusterNotFound: 11,
                                               ErrorType.NoHealthyUpstream: 22, ErrorType.OverLimit: 23}),
           "error_msg": ERROR_MESSAGE},
    max_size=0xFFFF,  # the header size is a u16
)

frame = Struct(
    "magic" / Const(b"\x09\x30"),
    "unary" / Const(b"\x00"),  # data frame type: 1 (stream) is refused here
    "stream_frame_type" / Int8ub,
    "total_size" / Rebuild(Int32ub, FIXED + len_(this.header) + len_(this.body)),
    "header_size" / Rebuild(Int16ub, len_(this.header)),
    "stream_id" / Int32ub,
    "version" / Int8ub,
    "reserved" / Int8ub,
    "header" / TrpcHeader(this.header_size, direction=DIRECTION),
    "body" / Bytes(this.total_size - FIXED - this.header_size),
)

PROTOCOL = Protocol(
    name="trpcunary",
    frame=frame,
    request_id="header.request_id",
    message_type=[When((DIRECTION == REQUEST) & (this.header.call_type == 1), MessageType.Oneway)],
    response_error=(this.header.ret != 0) | (this.header.func_ret != 0),
    routing_keys={"caller": "header.caller", "callee": "header.callee", "func": "header.func"},
    operation_name="{header.func}",
    headers=HeaderMap("header"),
    body="body",
    error_reply={"stream_id": REQUEST_ID, "version": 1, "header": ERROR_MESSAGE, "body": b""},
    max_frame_size=MAX_FRAME,
    doc=__doc__,
)
