"""mqtt: MQTT 3.1.1 (and 5.0's CONNECT) control packets: fixed header, routing fields.

    fixed header: packet type (4 bits) | dup | qos (2 bits) | retain
    | remaining length (varint) | variable header + payload (remaining length bytes)

The packet after the fixed header is chosen by ``packet_type * 4 + qos`` so that each
(type, flags) pair the standard allows has its own layout, and anything else (reserved
types, wrong flags, PUBLISH at QoS 3 after its topic) is opaque:

    CONNECT      protocol name, level, flags, keep alive, [5.0: properties], client id, rest
    CONNACK      ack flags, return code, rest
    PUBLISH      topic, packet id (QoS 1 and 2 only), rest (5.0 properties and payload)
    PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
                 packet id, rest
    PINGREQ, PINGRESP, DISCONNECT, others: opaque

Routing keys ``packet_type`` (decimal, as Wireshark's ``mqtt.msgtype``), ``client_id``
(CONNECT) and ``topic`` (PUBLISH).  No request id: the packet identifier exists on some
packets only and the error reply (a CONNACK) cannot carry one, so every frame has request
id 0, which MetaProtocol allows for protocols without ids (a response then pairs with the
request by order, on a non-multiplexed upstream connection).  PINGREQ is a heartbeat the proxy answers with PINGRESP (PINGRESP from upstream
is swallowed).  From the client, PUBLISH at QoS 0 and DISCONNECT are Oneway (nothing
answers them); a CONNACK with a non-zero return code is an Error; the rest keep the
framework preset (Request from the client, Response from the server: a PUBLISH the broker
pushes to a subscriber decodes as a Response).

Error reply: MQTT 3.1.1 has no generic error packet.  The codec answers with CONNACK
return code 3 (server unavailable), right for a refused CONNECT; after CONNECT a client
treats a second CONNACK as a protocol violation and closes the connection, which is the
only error 3.1.1 allows there.

The remaining length and MQTT 5's property length are Variable Byte Integers of at most 4
bytes (``BoundedVarInt(4)``): a fifth byte is refused as the protocol error it is.

Limits: MQTT does not fit MetaProtocol's one-response-per-request model in general: server-pushed
PUBLISH, QoS 0 and QoS 2's four-packet flow have no request/response pairing, so this
spec is for decoding, routing on CONNECT and replaying captures more than for proxying.
There is no mutable header: encode passes packets through.
"""

from construct import BitStruct, BitsInteger, Bytes, Flag, Int8ub, Int16ub, PascalString, Struct, Switch, len_, this

from codecgen import (DIRECTION, REQUEST, BoundedVarInt, ErrorCode, Heartbeat, Key, MessageType, Protocol,
                      When)

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
SERVER_UNAVAILABLE = 3
# The largest remaining length (268,435,455) plus the fixed header's 5 bytes at most.
MAX_PACKET = 268435455 + 5


def key(packet_type, qos=0):
    return packet_type * 4 + qos


def varint_size(n):
    """Bytes of a uvarint holding ``n`` (n < 2^28), as a this-expression."""
    return 1 + (n >= 128) + (n >= 16384) + (n >= 2097152)


# Variable header bytes of CONNECT before the 5.0 properties: name, level, flags, keep alive.
CONNECT_FIXED = 2 + len_(this._.protocol_name) + 4

# Every field that becomes a routing key is declared in one place only: the C++ backend
# publishes a field declared in several Switch cases only when the last of them was taken
# (see protocols/README.md).  So the PUBLISH topic sits in a Switch of its own before the
# packet, and CONNECT's client id after a Switch on the 5.0 properties.
connect = Struct(
    "protocol_name" / PascalString(Int16ub, "utf8"),
    "level" / Int8ub,
    "connect_flags" / Int8ub,
    "keep_alive" / Int16ub,
    "v5" / Switch(this.level, {
        5: Struct("properties_len" / BoundedVarInt(4), "properties" / Bytes(this.properties_len)),
    }, default=Struct()),
    "client_id" / PascalString(Int16ub, "utf8"),
    "connect_rest" / Switch(this.level, {
        5: Struct("payload5" / Bytes(this._._.remaining_length - CONNECT_FIXED - 2 - len_(this._.client_id)
                                     - varint_size(this._.v5.properties_len) - this._.v5.properties_len)),
    }, default=Struct("payload" / Bytes(this._._.remaining_length - CONNECT_FIXED - 2 - len_(this._.client_id)))),
)

connack = Struct(
    "ack_flags" / Int8ub,
    "return_code" / Int8ub,
    "connack_rest" / Bytes(this._.remaining_length - 2),
)

publish0 = Struct(
    "publish_rest0" / Bytes(this._.remaining_length - 2 - len_(this._.publish.topic)),
)

publish12 = Struct(
    "packet_id" / Int16ub,
    "publish_rest" / Bytes(this._.remaining_length - 4 - len_(this._.publish.topic)),
)

with_id = Struct(
    "packet_id" / Int16ub,
    "rest" / Bytes(this._.remaining_length - 2),
)

frame = Struct(
    "fixed" / BitStruct(
        "packet_type" / BitsInteger(4),
        "dup" / Flag,
        "qos" / BitsInteger(2),
        "retain" / Flag,
    ),
    "remaining_length" / BoundedVarInt(4),
    "publish" / Switch(this.fixed.packet_type, {
        PUBLISH: Struct("topic" / PascalString(Int16ub, "utf8")),
    }, default=Struct()),
    "packet" / Switch(this.fixed.packet_type * 4 + this.fixed.qos, {
        key(CONNECT): connect,
        key(CONNACK): connack,
        key(PUBLISH, 0): publish0,
        key(PUBLISH, 1): publish12,
        key(PUBLISH, 2): publish12,
        key(PUBACK): with_id,
        key(PUBREC): with_id,
        key(PUBREL, 1): with_id,  # PUBREL, SUBSCRIBE and UNSUBSCRIBE have flags 0010
        key(PUBCOMP): with_id,
        key(SUBSCRIBE, 1): with_id,
        key(SUBACK): with_id,
        key(UNSUBSCRIBE, 1): with_id,
        key(UNSUBACK): with_id,
        key(PUBLISH, 3): Struct("publish_rest3" / Bytes(this._.remaining_length - 2 - len_(this._.publish.topic))),
    }, default=Struct("payload" / Bytes(this._.remaining_length))),
)

PROTOCOL = Protocol(
    name="mqtt",
    frame=frame,
    # No request id (0 on every frame, as MetaProtocol allows for protocols without ids):
    # packet identifiers are on some packets only, and no error reply MQTT has can carry one.
    heartbeat=Heartbeat(
        when=(this.fixed.packet_type == PINGREQ) | (this.fixed.packet_type == PINGRESP),
        reply={"fixed.packet_type": PINGRESP, "remaining_length": 0},
    ),
    message_type=[
        When((this.fixed.packet_type == CONNACK) & (this.packet.return_code != 0), MessageType.Error),
        When((DIRECTION == REQUEST) & (this.fixed.packet_type == PUBLISH) & (this.fixed.qos == 0),
             MessageType.Oneway),
        When((DIRECTION == REQUEST) & (this.fixed.packet_type == DISCONNECT), MessageType.Oneway),
    ],
    response_error=(this.fixed.packet_type == CONNACK) & (this.packet.return_code != 0),
    routing_keys={
        "packet_type": "fixed.packet_type",
        # tshark shows an empty client id as mqtt.clientid "" (and an empty topic as no field).
        "client_id": Key("packet.client_id", publish_empty=True),
        "topic": "publish.topic",
    },
    error_reply={
        "fixed.packet_type": CONNACK,
        "remaining_length": 2,
        "packet.ack_flags": 0,
        "packet.return_code": ErrorCode(default=SERVER_UNAVAILABLE),
    },
    max_frame_size=MAX_PACKET,
    doc=__doc__,
)
