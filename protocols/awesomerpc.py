"""awesomerpc: Aeraki's sample private protocol, with its length bug fixed.

A 13-byte big-endian header, then ``pack_len - 13`` body bytes:

    version u8 | pack_flow u32 (request id) | pack_len u32 (whole frame, >= 13)
    | req_cmd i16 | rsp_code i16 | body

Aeraki's sample decodes ``pack_len`` as u16 but encodes it as u32; here it is
u32 both ways.  There is no message type field: the framework's preset
(Request downstream, Response upstream) is kept.
"""

from construct import Bytes, Int8ub, Int16sb, Int32ub, Rebuild, Struct, len_, this

from codecgen import REQUEST_ID, ErrorCode, Protocol

HEADER_SIZE = 13

frame = Struct(
    "version" / Int8ub,
    "pack_flow" / Int32ub,
    "pack_len" / Rebuild(Int32ub, len_(this.body) + HEADER_SIZE),
    "req_cmd" / Int16sb,
    "rsp_code" / Int16sb,
    "body" / Bytes(this.pack_len - HEADER_SIZE),
)

PROTOCOL = Protocol(
    name="awesomerpc",
    frame=frame,
    request_id="pack_flow",
    response_error=this.rsp_code != 0,
    routing_keys={"cmd": "req_cmd"},
    error_reply={
        "version": 1,
        "pack_flow": REQUEST_ID,
        "rsp_code": ErrorCode(default=1),
    },
    doc=__doc__,
)
