"""thriftheader: Apache Thrift's header transport (THeader), binary protocol inside.

One frame, big-endian (wire-formats §3.5)::

    LENGTH u32 (bytes after it) | magic 0x0FFF | flags u16 | seqid i32
    | header size u16, in 4-byte words | header | Thrift binary message (no inner length)

The header (``ThriftHeader``, an extension field in ``codecgen.ext.thrift``) holds the
protocol id, the transforms and the info key/value blocks, varint-coded and padded to 4 bytes.
Its key/values are the mutable headers: every string key/value is published (the last one of a
repeated key wins), and a mutation appends one key/value block, so the header size and LENGTH
are recomputed. The message after it is ``codecgen.ext.thrift.binary``, as in ``thrift.py``;
the frame around both is ``codecgen.ext.thrift.framing.header_frame``, shared with ``ttheader.py``.

Roles: routing key ``method`` (``Service:method`` under TMultiplexedProtocol) and every info
key/value; request id = the message's seqid (writers put the same value in the header's seqid);
CALL/REPLY/EXCEPTION/ONEWAY -> Request/Response/Error/Oneway.

Error reply: a THeader frame (flags 0, the request id as both seqids, an empty binary-protocol
header) carrying an EXCEPTION with a ``TApplicationException``: UNKNOWN_METHOD (1) for
RouteNotFound, INTERNAL_ERROR (6) otherwise.

Not covered: the compact protocol and payload transforms (zlib) inside THeader (refused: a
compressed payload cannot be routed), fbthrift's persistent headers (info id 2: like any
unknown info id, it ends the info blocks, as in Apache's readers), and the framed and unframed
clients an Apache THeader server also accepts on the same port (``thrift.py`` covers framed).
"""

from codecgen import HeaderMap, Protocol
from codecgen.ext.thrift import MAX_FRAME, ThriftHeader, message_roles
from codecgen.ext.thrift.framing import header_error_reply, header_frame

frame = header_frame(b"\x0f\xff", ThriftHeader)

PROTOCOL = Protocol(
    name="thriftheader",
    frame=frame,
    **message_roles("frame"),
    routing_keys={"method": "frame.method"},
    headers=HeaderMap("frame.header"),
    error_reply=header_error_reply(),
    max_frame_size=MAX_FRAME + 4,
    # codecgen serve answers a CALL with the same frame as a REPLY (body: who answered).
    sample_response={"frame.mtype": 2},  # REPLY
    doc=__doc__,
)
