"""kafka: the Apache Kafka wire protocol's framing and request/response headers.

Every message is ``size i32`` followed by exactly that many bytes, big-endian.  The layout
after the size depends on the direction (``DIRECTION``):

    request  (header v1/v2): api_key i16 | api_version i16 | correlation_id i32
                             | client_id: i16 length (-1 = null) + bytes | rest (opaque)
    response (header v0/v1): correlation_id i32 | rest (opaque)

ControlledShutdown v0 (api_key 7, version 0) uses request header v0, without client_id.
The v2 header's tagged fields (flexible versions), the v1 response header's tagged fields
and every request and response body are in the opaque rest: the codec does not know the
API schemas.

Routing keys ``api_key``, ``api_version`` and ``client_id`` (decimal numbers as strings;
``client_id`` absent when null); request id = correlation_id.  Every request is a
Request and every response a Response: Kafka's errors are error_code fields inside
each API's own response body, which stays opaque.

Error reply: Kafka has no generic error response (errors are fields of each API's own
body).  The codec answers with the request's correlation id and one 0x00 byte, no body
beyond it: ``00 00 00 05 <correlation_id> 00``.  The 0x00 is an empty tagged-field buffer
where the response header is v1 (flexible versions) and the first body byte where it is
v0, so either way the client's header parse succeeds and matches the correlation id, and
its body parse then fails: the request fails at once instead of after a timeout
(kafka-python raises KafkaProtocolError "Unable to decode response").

Not covered: SaslHandshake v0's raw SASL tokens (frames without a Kafka header; use
SaslAuthenticate, v1+), and a response's api key (responses do not carry it).
"""

from construct import Bytes, GreedyBytes, If, Int16sb, Int32sb, Int32ub, Prefixed, Struct, Switch, this

from codecgen import DIRECTION, REQUEST, REQUEST_ID, RESPONSE, Protocol

CONTROLLED_SHUTDOWN = 7
NULL = -1  # a null client_id
EMPTY_TAG_BUFFER = b"\x00"  # no tagged fields (uvarint count 0)
# The broker's default socket.request.max.bytes, plus the size field itself.
MAX_REQUEST = 104857600

request_header = Struct(
    "api_key" / Int16sb,
    "api_version" / Int16sb,
    "correlation_id" / Int32sb,
    "client" / If((this.api_key != CONTROLLED_SHUTDOWN) | (this.api_version != 0), Struct(
        "client_id_len" / Int16sb,
        "client_id" / Switch(this.client_id_len, {NULL: Struct()},
                             default=Struct("value" / Bytes(this._.client_id_len))),
    )),
)

response_header = Struct(
    "correlation_id" / Int32sb,
)

frame = Struct(
    "message" / Prefixed(Int32ub, Struct(
        "header" / Switch(DIRECTION, {REQUEST: request_header, RESPONSE: response_header}),
        "body" / GreedyBytes,
    )),
)

PROTOCOL = Protocol(
    name="kafka",
    frame=frame,
    request_id="message.header.correlation_id",
    routing_keys={
        "api_key": "message.header.api_key",
        "api_version": "message.header.api_version",
        "client_id": "message.header.client.client_id.value",
    },
    body="message.body",
    error_reply={
        "message.header.correlation_id": REQUEST_ID,
        "message.body": EMPTY_TAG_BUFFER,
    },
    max_frame_size=MAX_REQUEST + 4,
    doc=__doc__,
)
