"""tars: the Tars RPC protocol (TarsCpp, TarsJava, TarsGo, @tars/rpc), TARS and TUP packets.

A frame is a big-endian u32 length, counting itself, then one packet in the Tars coding::

    length u32 (whole frame) | RequestPacket (requests) or ResponsePacket (responses)

The packet is a ``TarsPacket`` extension field (``codecgen.ext.tars``): tagged, typed fields
(TLV) read field by field in both engines; sBuffer, the call's arguments or result, is never
copied. Requests: iVersion, cPacketType, iMessageType, iRequestId, sServantName, sFuncName,
sBuffer, iTimeout, context, status; responses: iVersion, cPacketType, iRequestId, iMessageType,
iRet, sBuffer, status, sResultDesc, context (a TUP response, iVersion 2 or 3, is a RequestPacket
whose status STATUS_RESULT_CODE is the result).

Roles: request id = iRequestId; routing keys ``servant`` and ``func`` and every ``context``
entry (the mutable header map: a mutation re-encodes the context map and the frame length
follows); operation name ``servant/func``; cPacketType 1 (TARSONEWAY) is Oneway; a response
with a non-zero iRet is an Error with ResponseStatus Error. Error reply: a ResponsePacket
echoing the request id, iRet -4 (SERVANT_NOT_FOUND) when no route or cluster exists, -9
(TARSSERVEROVERLOAD) on overload, -99 (TARSSERVERUNKNOWNERR) otherwise, the message as
sResultDesc.

Not covered: Tars has no heartbeat frame of its own (``tars_ping`` is an ordinary call, routed
like any other); sBuffer is not decoded; the error reply is a ResponsePacket, which a TUP client
(reading RequestPackets) does not understand. Frames are at most 10 MiB (TarsCpp's default
packet limit).
"""

from construct import Int32ub, Rebuild, Struct, len_, this

from codecgen import ERROR_MESSAGE, HeaderMap, MessageType, Protocol, When
from codecgen.ext.tars import TarsPacket

ONEWAY = 1

frame = Struct(
    "length" / Rebuild(Int32ub, len_(this.packet) + 4),
    "packet" / TarsPacket(this.length - 4),
)

PROTOCOL = Protocol(
    name="tars",
    frame=frame,
    request_id="packet.request_id",
    message_type=[
        When(this.packet.ret != 0, MessageType.Error),
        When(this.packet.packet_type == ONEWAY, MessageType.Oneway),
    ],
    response_error=this.packet.ret != 0,
    routing_keys={"servant": "packet.servant", "func": "packet.func"},
    operation_name="{packet.servant}/{packet.func}",
    headers=HeaderMap("packet"),
    error_reply={"packet": ERROR_MESSAGE},
    max_frame_size=10 * 1024 * 1024,
    doc=__doc__,
)
