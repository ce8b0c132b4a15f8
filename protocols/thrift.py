"""thrift: Apache Thrift, binary protocol (strict version header) over the framed transport.

Every message is ``frame_len i32`` followed by exactly that many bytes, big-endian:

    version u16 = 0x8001 | unused u8 | mtype u8 (CALL 1, REPLY 2, EXCEPTION 3, ONEWAY 4)
    | method: name_len i32 + UTF-8 | seqid i32 | body: the args/result struct (opaque)

Routing key ``method`` (the name as sent, ``Service:method`` under TMultiplexedProtocol),
request id = seqid, CALL/REPLY/EXCEPTION/ONEWAY -> Request/Response/Error/Oneway.

The body is opaque except for an EXCEPTION's ``TApplicationException`` when it starts
with the usual ``message`` (field 1, string) then ``type`` (field 2, i32) fields: those are
split out so that the error reply is one.  Any other exception body (no message, other
field order) falls to the opaque cases, so decode accepts every strict binary exception.

Error reply: a framed EXCEPTION with the request's method name and seqid and a
``TApplicationException{message, type}``: UNKNOWN_METHOD (1) for RouteNotFound,
INTERNAL_ERROR (6) otherwise.

Not covered: the non-strict (old) binary header, the compact protocol, the unframed
(buffered) transport and THeader/TTHeader (their info headers need varint fields inside a
length-bounded header region, which the DSL does not express).  Thrift has no mutable
header in this layout, so encode passes frames through unchanged.
"""

from construct import (Const, Enum, GreedyBytes, Int8ub, Int16sb, Int32sb, Int32ub, PascalString,
                       Padding, Prefixed, Struct, Switch, this)

from codecgen import ERROR_MESSAGE, REQUEST_ID, ErrorCode, ErrorType, FromMetadata, MessageType, Protocol, When

# TApplicationException types (thrift-rpc.md)
UNKNOWN, UNKNOWN_METHOD, INTERNAL_ERROR = 0, 1, 6
T_STRING, T_I32 = 11, 8
# Apache's default maximum frame length (thrift-rpc.md), plus the 4-byte length itself.
MAX_FRAME = 16384000

exception = Struct(
    "exc_type1" / Int8ub,  # field type of the first field
    "exc_first" / Switch(this.exc_type1, {
        T_STRING: Struct(
            "exc_id1" / Int16sb,
            "exc_message" / PascalString(Int32ub, "utf8"),
            "exc_type2" / Int8ub,
            "exc_second" / Switch(this.exc_type2, {
                T_I32: Struct(
                    "exc_id2" / Int16sb,
                    "exc_code" / Int32sb,
                    "exc_rest" / GreedyBytes,  # the STOP byte (and any later field)
                ),
            }, default=Struct("exc_tail2" / GreedyBytes)),
        ),
    }, default=Struct("exc_tail1" / GreedyBytes)),
)

frame = Struct(
    "frame" / Prefixed(Int32ub, Struct(
        "version" / Const(b"\x80\x01"),
        Padding(1),
        "mtype" / Enum(Int8ub, CALL=1, REPLY=2, EXCEPTION=3, ONEWAY=4),
        "method" / PascalString(Int32ub, "utf8"),
        "seqid" / Int32sb,
        "payload" / Switch(this.mtype, {
            "EXCEPTION": Struct("exc" / exception),
        }, default=Struct("body" / GreedyBytes)),
    )),
)

PROTOCOL = Protocol(
    name="thrift",
    frame=frame,
    request_id="frame.seqid",
    message_type=[
        When(this.frame.mtype == "CALL", MessageType.Request),
        When(this.frame.mtype == "REPLY", MessageType.Response),
        When(this.frame.mtype == "EXCEPTION", MessageType.Error),
        When(this.frame.mtype == "ONEWAY", MessageType.Oneway),
    ],
    response_error=this.frame.mtype == "EXCEPTION",
    routing_keys={"method": "frame.method"},
    operation_name="{frame.method}",
    body="frame.payload.body",
    error_reply={
        "frame.mtype": "EXCEPTION",
        "frame.method": FromMetadata("method"),
        "frame.seqid": REQUEST_ID,
        "frame.payload.exc.exc_type1": T_STRING,
        "frame.payload.exc.exc_first.exc_id1": 1,
        "frame.payload.exc.exc_first.exc_message": ERROR_MESSAGE,
        "frame.payload.exc.exc_first.exc_type2": T_I32,
        "frame.payload.exc.exc_first.exc_second.exc_id2": 2,
        "frame.payload.exc.exc_first.exc_second.exc_code": ErrorCode({
            ErrorType.RouteNotFound: UNKNOWN_METHOD,
        }, default=INTERNAL_ERROR),
        "frame.payload.exc.exc_first.exc_second.exc_rest": b"\x00",
    },
    max_frame_size=MAX_FRAME + 4,
    doc=__doc__,
)
