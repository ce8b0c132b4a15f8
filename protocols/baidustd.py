"""baidustd: brpc's baidu_std protocol (apache/brpc), the meta a protobuf message.

One frame, big-endian (brpc docs/en/baidu_std.md)::

    "PRPC" | body size u32 (bytes after these 12) | meta size u32
    | meta: brpc.policy.RpcMeta (protobuf) | payload (the message, then attachment_size bytes)

The meta is a protobuf extension field (``codecgen.ext.protobuf``) generated from
``brpc.proto`` beside this file. One message serves both directions: a request carries
``request`` (RpcRequestMeta), a response ``response`` (RpcResponseMeta).

Roles: request id = ``correlation_id`` (int64); routing keys ``service`` and ``method``
(``request.service_name``, ``request.method_name``) and every ``user_fields`` entry (the
mutable header map: a mutation appends entries, so the meta size and the body size are
rebuilt and the payload is moved, not copied); operation name ``service/method``; a response
with ``response.error_code`` not 0 has ResponseStatus Error.

Error reply: "PRPC", an RpcMeta with the correlation id and ``response`` {``error_code``
1001 ENOSERVICE (RouteNotFound, ClusterNotFound), 2004 ELIMIT (OverLimit), 2001 EINTERNAL
otherwise, ``error_text``}, no payload.

Not covered: the payload and attachment (opaque; ``compress_type`` does not matter to
routing), streaming RPC and chunk mode (their frames decode, nothing in them is read), brpc's
other protocols on the same port (hulu, sofa, http, ...: wrong magic). Named ``baidustd``, not
``brpc``: meta-protocol-proxy ships a built-in codec named ``brpc`` (see protocols/README.md).
"""

from pathlib import Path

from construct import Bytes, Const, Int32ub, Rebuild, Struct, len_, this

from codecgen import ERROR_MESSAGE, REQUEST_ID, ErrorCode, ErrorType, HeaderMap, Protocol
from codecgen.ext.protobuf import protobuf_header

MAX_BODY = 64 * 1024 * 1024  # brpc's default -max_body_size

BrpcMeta = protobuf_header(
    "brpc_meta", Path(__file__).with_name("brpc.proto"), request="brpc.policy.RpcMeta",
    outputs={"correlation_id": "correlation_id", "service": "request.service_name",
             "method": "request.method_name", "log_id": "request.log_id",
             "error_code": "response.error_code"},
    header_map="user_fields",
    error={"correlation_id": REQUEST_ID,
           "response.error_code": ErrorCode(default=2001, codes={
               ErrorType.RouteNotFound: 1001, ErrorType.ClusterNotFound: 1001, ErrorType.OverLimit: 2004}),
           "response.error_text": ERROR_MESSAGE},
)

frame = Struct(
    "magic" / Const(b"PRPC"),
    "body_size" / Rebuild(Int32ub, len_(this.meta) + len_(this.payload)),
    "meta_size" / Rebuild(Int32ub, len_(this.meta)),
    "meta" / BrpcMeta(this.meta_size),
    "payload" / Bytes(this.body_size - this.meta_size),
)

PROTOCOL = Protocol(
    name="baidustd",
    frame=frame,
    request_id="meta.correlation_id",
    response_error=this.meta.error_code != 0,
    routing_keys={"service": "meta.service", "method": "meta.method"},
    operation_name="{meta.service}/{meta.method}",
    headers=HeaderMap("meta"),
    body="payload",
    error_reply={"meta": ERROR_MESSAGE, "payload": b""},
    max_frame_size=MAX_BODY + 12,
    doc=__doc__,
)
