"""The Thrift binary protocol's message (strict version header), as construct fields for specs.

``protocols/thrift.py`` (framed transport), ``protocols/thriftheader.py`` (Apache THeader) and
``protocols/ttheader.py`` (Kitex TTHeader) carry the same message after their own framing; this
module is its one description, with the roles that read it (wire-formats §3.2)::

    version u16 = 0x8001 | unused u8 | mtype u8 (CALL 1, REPLY 2, EXCEPTION 3, ONEWAY 4)
    | method: name_len i32 + UTF-8 | seqid i32 | body: the args/result struct (opaque)

The body is opaque except for an EXCEPTION's ``TApplicationException`` when it starts with
the usual ``message`` (field 1, string) then ``type`` (field 2, i32) fields: those are split
out so that the error reply is one. Any other exception body falls to the opaque cases, so
decode accepts every strict binary exception.
"""

from construct import Const, Enum, GreedyBytes, Int8ub, Int16sb, Int32sb, Int32ub, PascalString, Padding, Struct, Switch, this

from codecgen import ERROR_MESSAGE, REQUEST_ID, ErrorCode, ErrorType, FromMetadata, MessageType, When

# TApplicationException types (Apache Thrift doc/specs/thrift-rpc.md)
UNKNOWN, UNKNOWN_METHOD, INTERNAL_ERROR = 0, 1, 6
T_STRING, T_I32 = 11, 8
# Apache's default maximum frame length (Apache Thrift doc/specs/thrift-rpc.md), without the 4-byte length itself.
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

# The message's fields, to splice into the struct that frames it: Struct(..., *MESSAGE).
MESSAGE = (
    "version" / Const(b"\x80\x01"),
    Padding(1),
    "mtype" / Enum(Int8ub, CALL=1, REPLY=2, EXCEPTION=3, ONEWAY=4),
    "method" / PascalString(Int32ub, "utf8"),
    "seqid" / Int32sb,
    "payload" / Switch(this.mtype, {
        "EXCEPTION": Struct("exc" / exception),
    }, default=Struct("body" / GreedyBytes)),
)


def message_roles(at: str) -> dict:
    """The roles every Thrift spec gives the message at ``at`` (``"frame"``), as Protocol
    keywords: request id = seqid, the message types, EXCEPTION as the response error, the
    method as operation name, the opaque args/result struct as the body. Routing keys stay
    in each spec (the header transports add their own)."""
    struct = getattr(this, at)
    return dict(request_id=f"{at}.seqid", message_type=message_types(struct),
                response_error=struct.mtype == "EXCEPTION", operation_name="{" + at + ".method}",
                body=f"{at}.payload.body")


def message_types(at):
    """CALL/REPLY/EXCEPTION/ONEWAY -> Request/Response/Error/Oneway; ``at`` is the message's
    struct (``this.frame``)."""
    return [
        When(at.mtype == "CALL", MessageType.Request),
        When(at.mtype == "REPLY", MessageType.Response),
        When(at.mtype == "EXCEPTION", MessageType.Error),
        When(at.mtype == "ONEWAY", MessageType.Oneway),
    ]


def error_reply(at):
    """The message of an error reply: an EXCEPTION with the request's method name and seqid
    and a ``TApplicationException{message, type}``, UNKNOWN_METHOD (1) for RouteNotFound and
    INTERNAL_ERROR (6) otherwise. ``at`` is the message struct's path, e.g. ``"frame."``."""
    exc = at + "payload.exc."
    return {
        at + "mtype": "EXCEPTION",
        at + "method": FromMetadata("method"),
        at + "seqid": REQUEST_ID,
        exc + "exc_type1": T_STRING,
        exc + "exc_first.exc_id1": 1,
        exc + "exc_first.exc_message": ERROR_MESSAGE,
        exc + "exc_first.exc_type2": T_I32,
        exc + "exc_first.exc_second.exc_id2": 2,
        exc + "exc_first.exc_second.exc_code": ErrorCode({ErrorType.RouteNotFound: UNKNOWN_METHOD},
                                                         default=INTERNAL_ERROR),
        exc + "exc_first.exc_second.exc_rest": b"\x00",
    }
