"""modbus: Modbus/TCP (the MBAP header and the PDU's function code).

Big-endian, 7-byte MBAP header, then the PDU:

    transaction_id u16 | protocol_id u16 = 0 | length u16 (bytes after it: unit id + PDU)
    | unit_id u8 | function: exception bit (0x80) + function code (7 bits) | data

An ADU is at most 260 bytes (length <= 254).  Routing keys ``unit_id`` and
``function_code`` (decimal; the code without the exception bit, as Wireshark's
``modbus.func_code`` shows it); request id = transaction_id.  A response whose function
has the exception bit (``fc | 0x80``) is an Error, its one data byte the exception code.
Requests and normal responses keep the framework preset (Request downstream, Response
upstream); the PDU data is opaque.

Error reply: a Modbus exception response echoing the transaction id, the unit id and the
function code (from the request's metadata) with the exception bit set, and the gateway
exception codes: 0x0A GATEWAY PATH UNAVAILABLE for RouteNotFound and ClusterNotFound,
0x0B GATEWAY TARGET DEVICE FAILED TO RESPOND for the rest.

Not covered: Modbus RTU/ASCII (serial framings with CRC/LRC), and Modbus over TLS's
certificate-based roles.  Modbus has no mutable header: encode passes frames through.
"""

from construct import BitStruct, BitsInteger, Const, Flag, GreedyBytes, Int8ub, Int16ub, Prefixed, Struct, Switch, this

from codecgen import DIRECTION, REQUEST_ID, RESPONSE, ErrorCode, ErrorType, FromMetadata, MessageType, Protocol, When

GATEWAY_PATH_UNAVAILABLE = 0x0A
GATEWAY_TARGET_FAILED = 0x0B
MAX_ADU = 260

frame = Struct(
    "transaction_id" / Int16ub,
    "protocol_id" / Const(0, Int16ub),
    "adu" / Prefixed(Int16ub, Struct(
        "unit_id" / Int8ub,
        "function" / BitStruct(
            "exception" / Flag,
            "code" / BitsInteger(7),
        ),
        "pdu" / Switch(this.function.exception, {
            True: Struct("exception_code" / Int8ub),
        }, default=Struct("data" / GreedyBytes)),
    )),
)

PROTOCOL = Protocol(
    name="modbus",
    frame=frame,
    request_id="transaction_id",
    message_type=[
        When((DIRECTION == RESPONSE) & this.adu.function.exception, MessageType.Error),
    ],
    response_error=this.adu.function.exception,
    routing_keys={
        "unit_id": "adu.unit_id",
        "function_code": "adu.function.code",
    },
    body="adu.pdu.data",
    error_reply={
        "transaction_id": REQUEST_ID,
        "adu.unit_id": FromMetadata("unit_id", 0),
        "adu.function.exception": 1,
        "adu.function.code": FromMetadata("function_code", 0),
        "adu.pdu.exception_code": ErrorCode({
            ErrorType.RouteNotFound: GATEWAY_PATH_UNAVAILABLE,
            ErrorType.ClusterNotFound: GATEWAY_PATH_UNAVAILABLE,
        }, default=GATEWAY_TARGET_FAILED),
    },
    max_frame_size=MAX_ADU,
    doc=__doc__,
)
