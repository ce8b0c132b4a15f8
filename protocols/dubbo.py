"""dubbo: Apache Dubbo 2 ("dubbo" protocol, port 20880) with Hessian 2 bodies.

A 16-byte header (wire-formats §1.1), all big-endian::

    magic 0xdabb | flag: req, twoway, event, serialization (5 bits) | status u8
    | request id i64 | body length i32 | body

The body is a ``DubboBody`` extension field (``codecgen.ext.dubbo``, on the Hessian 2 library
in ``codecgen.ext.hessian2``): framing only needs the body length; the extension reads the
interface, method and attachments of a request (skipping the arguments, whatever their
types), the result flag of a response, and rewrites the attachments map for a mutation.

Roles: routing keys ``interface``, ``method`` and every string attachment; operation name
``interface/method``; heartbeats are event frames (answered with flag 0x22, status 20, body
``N``); a request without the two-way bit is Oneway; a response is an Error when its status is
not 20 (OK) or its result is an exception, and its response status is then Error. The error
reply is a real Dubbo error response: status 60 SERVICE_NOT_FOUND when no route or cluster
exists, 50 BAD_RESPONSE for a bad upstream response, 80 SERVER_ERROR otherwise, the request
id echoed, and the message as one Hessian string (what a Dubbo client raises as
RemotingException). Only Hessian 2 (serialization id 2) bodies are accepted.
"""

from construct import BitStruct, BitsInteger, Const, Enum, Flag, Int8ub, Int32sb, Int64ub, Rebuild, Struct, len_, this

from codecgen import ERROR_MESSAGE, REQUEST_ID, ErrorCode, ErrorType, HeaderMap, Heartbeat, MessageType, Protocol, When
from codecgen.ext.dubbo import DubboBody

HESSIAN2 = 2
# org.apache.dubbo.remoting.exchange.Response (wire-formats §1.3).
STATUS = dict(OK=20, SERIALIZATION_ERROR=25, CLIENT_TIMEOUT=30, SERVER_TIMEOUT=31, CHANNEL_INACTIVE=35,
              BAD_REQUEST=40, BAD_RESPONSE=50, SERVICE_NOT_FOUND=60, SERVICE_ERROR=70, SERVER_ERROR=80,
              CLIENT_ERROR=90, SERVER_THREADPOOL_EXHAUSTED_ERROR=100)

frame = Struct(
    "magic" / Const(b"\xda\xbb"),
    "flag" / BitStruct(
        "req" / Flag,
        "twoway" / Flag,
        "event" / Flag,
        "serialization" / Enum(BitsInteger(5), hessian2=HESSIAN2),
    ),
    "status" / Enum(Int8ub, **STATUS),
    "request_id" / Int64ub,
    "body_length" / Rebuild(Int32sb, len_(this.body)),
    "body" / DubboBody(this.body_length, request=this.flag.req, event=this.flag.event, status=this.status,
                       serialization=this.flag.serialization),
)

PROTOCOL = Protocol(
    name="dubbo",
    # The built-in codec of this name in meta-protocol-proxy is replaced in images, so that
    # Aeraki's own mapping of the application protocol "dubbo" reaches this codec (protocols/README.md).
    replaces_builtin=True,
    frame=frame,
    request_id="request_id",
    heartbeat=Heartbeat(
        when=this.flag.event,
        reply={"flag.event": 1, "flag.serialization": HESSIAN2, "status": "OK", "request_id": REQUEST_ID,
               "body": b"N"},
    ),
    message_type=[
        When((this.flag.req == 0) & ((this.status != STATUS["OK"]) | (this.body.exception != 0)), MessageType.Error),
        When(this.flag.req == 0, MessageType.Response),
        When(this.flag.twoway == 0, MessageType.Oneway),
        When(this.flag.req != 0, MessageType.Request),
    ],
    response_error=(this.flag.req == 0) & ((this.status != STATUS["OK"]) | (this.body.exception != 0)),
    routing_keys={"interface": "body.interface", "method": "body.method"},
    operation_name="{body.interface}/{body.method}",
    headers=HeaderMap("body"),
    error_reply={
        "flag.serialization": HESSIAN2,
        "status": ErrorCode({
            ErrorType.RouteNotFound: STATUS["SERVICE_NOT_FOUND"],
            ErrorType.ClusterNotFound: STATUS["SERVICE_NOT_FOUND"],
            ErrorType.BadResponse: STATUS["BAD_RESPONSE"],
        }, default=STATUS["SERVER_ERROR"]),
        "request_id": REQUEST_ID,
        "body": ERROR_MESSAGE,
    },
    max_frame_size=16 + 8 * 1024 * 1024,
    # For the sample tools (codecgen serve/call/probe): a two-way Hessian 2 request, answered
    # with an OK response; the heartbeat is an event request.
    sample_request={"flag.req": 1, "flag.twoway": 1, "flag.serialization": HESSIAN2},
    sample_response={"flag.req": 0, "flag.twoway": 0, "status": STATUS["OK"]},
    sample_heartbeat={"flag.event": 1},
    doc=__doc__,
)
