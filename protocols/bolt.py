"""bolt: SOFA Bolt protocol v1 (SOFA RPC's transport, port 12200), big-endian.

Requests (type 1, oneway 2) and responses (type 0) differ in one field::

    proto 0x01 | type u8 | cmdcode u16 | ver2 u8 | request id u32 | codec u8
    | timeout i32 (requests) or response status u16 (responses)
    | class length u16 | header length u16 | content length i32
    | class name | header | content

cmdcode 0 is a heartbeat (a request; its ack a response), 1 an RPC request, 2 an RPC response.
codec is the content's serialization (1 hessian2, 11 protobuf): content stays opaque. The header
is a ``BoltHeader`` extension field (``codecgen.ext.bolt``): length-prefixed key/value strings
up to the end of the region, which codecgen's IR cannot count; every string pair is published
and a mutation appends pairs, so the header length is recomputed. As in sofa-bolt-node's reader,
any non-zero type is read as a request.

Roles: request id = the request id; routing keys ``service`` (the ``service`` header, else
``sofa_head_target_service``) and ``method`` (``sofa_head_method_name``: hessian2 calls of
sofa-bolt-node carry the method in the content only), and every header key (``service``,
``sofa_head_target_service``, ``sofa_head_method_name``, request props, ...); operation name
``service/method``. cmdcode 0 is a Heartbeat, answered with a heartbeat ack (type 0, cmdcode 0,
status SUCCESS, the request id); a response is an Error, with ResponseStatus Error, when its
status is not SUCCESS; type 2 is Oneway. Error reply: an RPC response echoing the request id,
status NO_PROCESSOR (6) when no route or cluster exists, SERVER_THREADPOOL_BUSY (4) on overload,
SERVER_EXCEPTION (2) otherwise, with no class, header or content (sofa-bolt-node raises "Server
exception ...", SOFA Bolt's Java client an RpcServerException for the status).

Not covered: Bolt v2 (proto 2: ver1, switch and the optional CRC32) is refused (wrong proto);
the content is not decoded.
"""

from construct import Bytes, Const, If, Int8ub, Int16ub, Int32sb, Int32ub, Rebuild, Struct, len_, this

from codecgen import REQUEST_ID, ErrorCode, ErrorType, HeaderMap, Heartbeat, MessageType, Protocol, When
from codecgen.ext.bolt import BoltHeader

RESPONSE, REQUEST, ONEWAY = 0, 1, 2
HEARTBEAT, RPC_REQUEST, RPC_RESPONSE = 0, 1, 2
HESSIAN2 = 1
# com.alipay.remoting.ResponseStatus
STATUS = dict(SUCCESS=0, ERROR=1, SERVER_EXCEPTION=2, UNKNOWN=3, SERVER_THREADPOOL_BUSY=4, ERROR_COMM=5,
              NO_PROCESSOR=6, TIMEOUT=7, CLIENT_SEND_ERROR=8, CODEC_EXCEPTION=9)

frame = Struct(
    "proto" / Const(1, Int8ub),
    "type" / Int8ub,
    "cmdcode" / Int16ub,
    "ver2" / Int8ub,
    "request_id" / Int32ub,
    "codec" / Int8ub,
    "timeout" / If(this.type != RESPONSE, Int32sb),
    "status" / If(this.type == RESPONSE, Int16ub),
    "class_len" / Rebuild(Int16ub, len_(this.class_name)),
    "header_len" / Rebuild(Int16ub, len_(this.header)),
    "content_len" / Rebuild(Int32sb, len_(this.content)),
    "class_name" / Bytes(this.class_len),
    "header" / BoltHeader(this.header_len),
    "content" / Bytes(this.content_len),
)

IS_ERROR = (this.type == RESPONSE) & (this.status != STATUS["SUCCESS"])

PROTOCOL = Protocol(
    name="bolt",
    frame=frame,
    request_id="request_id",
    heartbeat=Heartbeat(
        when=this.cmdcode == HEARTBEAT,
        reply={"type": RESPONSE, "cmdcode": HEARTBEAT, "ver2": 1, "request_id": REQUEST_ID, "codec": HESSIAN2,
               "status": STATUS["SUCCESS"]},
    ),
    message_type=[
        When(IS_ERROR, MessageType.Error),
        When(this.type == RESPONSE, MessageType.Response),
        When(this.type == ONEWAY, MessageType.Oneway),
        When(this.type != RESPONSE, MessageType.Request),
    ],
    response_error=IS_ERROR,
    routing_keys={"service": "header.service", "method": "header.method"},
    operation_name="{header.service}/{header.method}",
    headers=HeaderMap("header"),
    body="content",
    error_reply={
        "type": RESPONSE,
        "cmdcode": RPC_RESPONSE,
        "ver2": 1,
        "request_id": REQUEST_ID,
        "codec": HESSIAN2,
        "status": ErrorCode({
            ErrorType.RouteNotFound: STATUS["NO_PROCESSOR"],
            ErrorType.ClusterNotFound: STATUS["NO_PROCESSOR"],
            ErrorType.OverLimit: STATUS["SERVER_THREADPOOL_BUSY"],
        }, default=STATUS["SERVER_EXCEPTION"]),
    },
    max_frame_size=16 * 1024 * 1024,
    sample_request={"type": REQUEST, "cmdcode": RPC_REQUEST, "ver2": 1, "codec": HESSIAN2, "timeout": 3000},
    sample_response={"type": RESPONSE, "cmdcode": RPC_RESPONSE, "status": STATUS["SUCCESS"]},
    sample_heartbeat={"type": REQUEST, "cmdcode": HEARTBEAT, "ver2": 1, "codec": HESSIAN2, "timeout": 3000},
    doc=__doc__,
)
