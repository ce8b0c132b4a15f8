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

The message (and its error reply) is ``codecgen.ext.thrift.binary``, shared with the header
transports: ``thriftheader.py`` (Apache THeader) and ``ttheader.py`` (Kitex TTHeader).

Not covered: the non-strict (old) binary header, the compact protocol and the unframed
(buffered) transport.  Thrift has no mutable header in this layout, so encode passes frames
through unchanged.
"""

from construct import Int32ub, Prefixed, Struct

from codecgen import Protocol
from codecgen.ext.thrift import MAX_FRAME, MESSAGE, error_reply, message_roles

frame = Struct(
    "frame" / Prefixed(Int32ub, Struct(*MESSAGE)),
)

PROTOCOL = Protocol(
    name="thrift",
    # The built-in codec of this name in meta-protocol-proxy is replaced in images, so that
    # Aeraki's own mapping of the application protocol "thrift" reaches this codec (protocols/README.md).
    replaces_builtin=True,
    frame=frame,
    **message_roles("frame"),
    routing_keys={"method": "frame.method"},
    error_reply=error_reply("frame."),
    max_frame_size=MAX_FRAME + 4,
    doc=__doc__,
)
