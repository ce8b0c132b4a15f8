"""ttheader: Kitex's TTHeader transport (CloudWeGo), Thrift binary protocol inside.

The outer frame is Apache THeader's with another magic (wire-formats §3.6)::

    LENGTH u32 (bytes after it) | magic 0x1000 | flags u16 | seqid i32
    | header size u16, in 4-byte words | header | Thrift binary message (no inner length)

The header (``KitexHeader``, an extension field in ``codecgen.ext.thrift``) is fixed-width:
protocol id u8, transforms u8, then info blocks: string key/values (0x01), Kitex's int
key/values (0x10), the ACL token (0x11) and padding (0x00). Its string key/values are the
mutable headers (every one is published, the last of a repeated key wins; a mutation appends a
key/value block, so the header size and LENGTH are recomputed). The message after it is
``codecgen.ext.thrift.binary``, as in ``thrift.py``; the frame around both is
``codecgen.ext.thrift.framing.header_frame``, shared with ``thriftheader.py``.

Roles: routing keys ``method`` (the Thrift method name), ``to_service``, ``to_method``,
``from_service``, ``from_method`` (Kitex int keys 6, 9, 3, 20) and every string key/value
(``isn``, the IDL service name, among them); request id = the message's seqid (Kitex writes the
same value in the header's seqid); CALL/REPLY/EXCEPTION/ONEWAY ->
Request/Response/Error/Oneway.

Error reply: a TTHeader frame (flags 0, the request id as both seqids, an empty header)
carrying an EXCEPTION with a ``TApplicationException``: UNKNOWN_METHOD (1) for RouteNotFound,
INTERNAL_ERROR (6) otherwise. A Kitex client needs nothing in the reply's header (it reads only
``biz-status`` and ``crrst``) and surfaces the exception as ``remote or network error[remote]:
<message>``.

Not covered: Thrift compact (protocol id 2) and Kitex protobuf payloads (Kitex writes protocol id
0 for those too: the payload's 0x8001 version refuses them); payload transforms (Kitex always
writes none and ignores the ids; a frame with any is refused here); the mesh header (magic
0xFFAF) and streaming frames (flag 0x0002). Headers above 65536 bytes are refused: Kitex's limit
until gopkg raised it to 4 x 65535 in December 2025.

Proof: no Kitex peer runs offline (Go modules), so ``tests/test_ttheader.py`` builds frames in
gopkg's layout around messages from Apache Thrift's Python library and reads our output back
with its own TTHeader reader and Apache's ``TBinaryProtocol``; see ``protocols/README.md``.
"""

from codecgen import HeaderMap, Protocol
from codecgen.ext.thrift import MAX_FRAME, KitexHeader, message_roles
from codecgen.ext.thrift.framing import header_error_reply, header_frame

frame = header_frame(b"\x10\x00", KitexHeader)

PROTOCOL = Protocol(
    name="ttheader",
    frame=frame,
    **message_roles("frame"),
    routing_keys={
        "method": "frame.method",
        "to_service": "frame.header.to_service",
        "to_method": "frame.header.to_method",
        "from_service": "frame.header.from_service",
        "from_method": "frame.header.from_method",
    },
    headers=HeaderMap("frame.header"),
    error_reply=header_error_reply(),
    max_frame_size=MAX_FRAME + 4,
    # codecgen serve answers a CALL with the same frame as a REPLY (body: who answered).
    sample_response={"frame.mtype": 2},  # REPLY
    doc=__doc__,
)
