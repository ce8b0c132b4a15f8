"""meshrpc: a private RPC protocol with string headers and a key/value header map.

The showcase for mutation: a route's ``requestMutation`` (and the tracing keys
Envoy adds) are written into the ``headers`` map, and both length fields that
cover it (the header region's u16 and nothing else: the body has its own u32)
are recomputed.  Layout, big-endian:

    magic "MR" | version u8 = 1 | flags (response, oneway, heartbeat, error, 4 spare bits)
    | request_id u64
    | header_len u16 | header: service str8, method str8, status u16,
                               headers: count u8, (key str8, value str16)*
    | body_len u32 | body
"""

from construct import (BitStruct, Const, Flag, GreedyBytes, Int8ub, Int16ub, Int32ub, Int64ub, PascalString,
                       Padding, Prefixed, PrefixedArray, Struct, this)

from codecgen import (ERROR_MESSAGE, REQUEST_ID, ErrorCode, ErrorType, FromMetadata, HeaderMap,
                      Heartbeat, MessageType, Protocol, When)

OK, NOT_FOUND, UNAVAILABLE, BAD_RESPONSE, INTERNAL, OVERLOADED = 0, 404, 503, 502, 500, 429

frame = Struct(
    "magic" / Const(b"MR"),
    "version" / Const(1, Int8ub),
    "flags" / BitStruct(
        "response" / Flag,
        "oneway" / Flag,
        "heartbeat" / Flag,
        "error" / Flag,
        Padding(4),
    ),
    "request_id" / Int64ub,
    "header" / Prefixed(Int16ub, Struct(
        "service" / PascalString(Int8ub, "utf8"),
        "method" / PascalString(Int8ub, "utf8"),
        "status" / Int16ub,
        "headers" / PrefixedArray(Int8ub, Struct(
            "key" / PascalString(Int8ub, "utf8"),
            "value" / PascalString(Int16ub, "utf8"),
        )),
    )),
    "body" / Prefixed(Int32ub, GreedyBytes),
)

PROTOCOL = Protocol(
    name="meshrpc",
    frame=frame,
    request_id="request_id",
    message_type=[
        When(this.flags.error, MessageType.Error),
        When(this.flags.response, MessageType.Response),
        When(this.flags.oneway, MessageType.Oneway),
        When(this.flags.response == 0, MessageType.Request),
    ],
    heartbeat=Heartbeat(
        when=this.flags.heartbeat,
        reply={"flags.response": 1, "flags.heartbeat": 1, "request_id": REQUEST_ID},
    ),
    response_error=this.header.status != OK,
    routing_keys={"service": "header.service", "method": "header.method"},
    operation_name="{header.service}/{header.method}",
    headers=HeaderMap("header.headers", key="key", value="value"),
    error_reply={
        "flags.response": 1,
        "flags.error": 1,
        "request_id": REQUEST_ID,
        "header.service": FromMetadata("service"),
        "header.method": FromMetadata("method"),
        "header.status": ErrorCode({
            ErrorType.RouteNotFound: NOT_FOUND,
            ErrorType.ClusterNotFound: NOT_FOUND,
            ErrorType.NoHealthyUpstream: UNAVAILABLE,
            ErrorType.BadResponse: BAD_RESPONSE,
            ErrorType.OverLimit: OVERLOADED,
        }, default=INTERNAL),
        "body": ERROR_MESSAGE,
    },
    sample_response={"flags.response": 1, "header.status": OK},
    sample_heartbeat={"flags.heartbeat": 1},
    doc=__doc__,
)
