"""``TarsPacket``: Tars' RequestPacket / ResponsePacket (RequestF.tars) in the Tars coding.

A packet is a sequence of fields, each a head (``tag << 4 | type`` in one byte; tag 15 means
the tag is the next byte) and a value: 0 INT8, 1 INT16, 2 INT32, 3 INT64 (big-endian, signed),
4 FLOAT, 5 DOUBLE, 6 STRING1 (u8 length), 7 STRING4 (u32 length), 8 MAP (a size, an int field
of tag 0, then size x (key, value) fields), 9 LIST (a size, then the elements), 10 STRUCT_BEGIN
... 11 STRUCT_END, 12 ZERO (an integer 0, no bytes), 13 SIMPLE_LIST (a head of type INT8, a
size of tag 0, the bytes). Writers use the smallest integer type that holds a value.

RequestPacket: 1 iVersion short, 2 cPacketType byte, 3 iMessageType int, 4 iRequestId int,
5 sServantName, 6 sFuncName, 7 sBuffer vector<byte>, 8 iTimeout int, 9 context and 10 status
map<string, string>. ResponsePacket: 1 iVersion, 2 cPacketType, 3 iRequestId, 4 iMessageType,
5 iRet int, 6 sBuffer, 7 status, 8 sResultDesc (optional), 9 context (optional). Requests are
RequestPackets; responses are ResponsePackets, or RequestPackets when iVersion is 2 or 3 (TUP,
whose result code is the status entry STATUS_RESULT_CODE). The layout is told by field 5, where
both differ: a string (sServantName) is a RequestPacket, anything else a ResponsePacket.

Reading is the readers' (@tars/stream, TarsCpp): fields are taken by ascending tag, a field
whose tag is not the wanted one is skipped (whatever its type, nesting up to 64 levels), a
required field that is not there is an error. Integer fields take ZERO and the integer types up
to their width; the whole packet must be well-formed fields to its end; sizes and lengths are
bounded by the bytes left; map entries are a string of tag 0 and a string of tag 1; sBuffer is a
SIMPLE_LIST (never copied: framing moves it).

Outputs: ``request_id``, ``version``, ``packet_type`` (1 = oneway), ``message_type``, ``ret``
(iRet; in a RequestPacket the status entry STATUS_RESULT_CODE, as a TUP reply carries it, else
0) and the texts ``servant``, ``func``, ``result_desc``. ``entries``: the
``context`` map (a repeated key, which no writer produces, publishes its last value).
``mutate`` re-encodes the context map in place: a key matching existing keys case-insensitively
gets the new value under each existing spelling, other keys are appended; the count and the
packet's length follow, the fields around it are moved. An absent (optional) response context is
inserted where its tag belongs. ``error_value``: a ResponsePacket (iVersion 1) with the request
id, iRet -4 SERVANT_NOT_FOUND for RouteNotFound/ClusterNotFound, -9 TARSSERVEROVERLOAD for
OverLimit, -99 TARSSERVERUNKNOWNERR otherwise, an empty sBuffer and status, and the message
as sResultDesc.
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # codecgen: embedded

INT8, INT16, INT32, INT64, FLOAT, DOUBLE, STRING1, STRING4, MAP, LIST, STRUCT_BEGIN, STRUCT_END, ZERO, \
    SIMPLE_LIST = range(14)
FIXED = {INT8: 1, INT16: 2, INT32: 4, INT64: 8, FLOAT: 4, DOUBLE: 8, STRUCT_END: 0, ZERO: 0}
MAX_DEPTH = 64
# Aeraki ErrorType -> iRet (TarsError: SERVANT_NOT_FOUND, TARSSERVEROVERLOAD, TARSSERVERUNKNOWNERR)
ERROR_RET = {0: -4, 1: -4, 5: -9}
UNKNOWN_ERROR = -99
TUP_VERSIONS = (2, 3)
RESULT_CODE = b"STATUS_RESULT_CODE"
# (tag, name, kind, required) in reading order; kinds: byte/short/int (widest integer type
# accepted), string, bytes, map.
REQUEST = ((1, "version", INT16, True), (2, "packet_type", INT8, True), (3, "message_type", INT32, True),
           (4, "request_id", INT32, True), (5, "servant", "string", True), (6, "func", "string", True),
           (7, "buffer", "bytes", True), (8, "timeout", INT32, True), (9, "context", "map", True),
           (10, "status", "map", True))
RESPONSE = ((1, "version", INT16, True), (2, "packet_type", INT8, True), (3, "request_id", INT32, True),
            (4, "message_type", INT32, True), (5, "ret", INT32, True), (6, "buffer", "bytes", True),
            (7, "status", "map", True), (8, "result_desc", "string", False), (9, "context", "map", False))
CONTEXT_TAG = 9


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n, what):
        if n > len(self.data) - self.pos:
            raise ExtensionError(f"{what} runs past the end of the packet")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def head(self):
        byte = self.take(1, "a field head")[0]
        tag, kind = byte >> 4, byte & 0x0F
        if tag == 15:
            tag = self.take(1, "a field head")[0]
        return tag, kind

    def integer(self, kind, widest, what):
        if kind == ZERO:
            return 0
        if kind > widest or kind > INT64:
            raise ExtensionError(f"{what}: type {kind} is not an integer of its width")
        return int.from_bytes(self.take(FIXED[kind], what), "big", signed=True)

    def size(self, what):
        tag, kind = self.head()
        if tag != 0:
            raise ExtensionError(f"{what}: the size has tag {tag}, not 0")
        size = self.integer(kind, INT32, what)
        if size < 0 or size > len(self.data) - self.pos:
            raise ExtensionError(f"{what}: size {size} does not fit the packet")
        return size

    def string(self, kind, what):
        if kind == STRING1:
            return self.take(self.take(1, what)[0], what)
        if kind == STRING4:
            return self.take(int.from_bytes(self.take(4, what), "big"), what)
        raise ExtensionError(f"{what}: type {kind} is not a string")

    def skip(self, kind, depth):
        if depth > MAX_DEPTH:
            raise ExtensionError(f"values nested deeper than {MAX_DEPTH}")
        if kind in FIXED:
            self.take(FIXED[kind], "a value")
        elif kind in (STRING1, STRING4):
            self.string(kind, "a string")
        elif kind in (MAP, LIST):
            for _ in range(self.size("a map or list") * (2 if kind == MAP else 1)):
                self.skip(self.head()[1], depth + 1)
        elif kind == STRUCT_BEGIN:
            while True:
                _, inner = self.head()
                if inner == STRUCT_END:
                    return
                self.skip(inner, depth + 1)
        elif kind == SIMPLE_LIST:
            self.simple_list("a simple list")
        else:
            raise ExtensionError(f"type {kind} is not a Tars type")

    def simple_list(self, what):
        _, inner = self.head()
        if inner != INT8:
            raise ExtensionError(f"{what}: a simple list of type {inner}, not bytes")
        return self.take(self.size(what), what)

    def string_map(self, what):
        pairs = []
        for _ in range(self.size(what)):
            for want in (0, 1):
                tag, kind = self.head()
                if tag != want:
                    raise ExtensionError(f"{what}: an entry field with tag {tag}, not {want}")
                pairs.append(self.string(kind, what))
        return [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


class _State:
    __slots__ = ("context", "context_at", "context_end")

    def __init__(self, context, context_at, context_end):
        self.context = context  # (key, value) bytes in wire order
        self.context_at, self.context_end = context_at, context_end  # equal: absent, insert there


def _latest(pairs):
    latest = {}
    for key, value in pairs:
        latest.pop(key, None)
        latest[key] = value
    return latest


def _lower(data):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in data)


def encode_head(tag, kind):
    return bytes([tag << 4 | kind]) if tag < 15 else bytes([0xF0 | kind, tag])


def encode_int(tag, value):
    if value == 0:
        return encode_head(tag, ZERO)
    for kind, width in ((INT8, 1), (INT16, 2), (INT32, 4), (INT64, 8)):
        if -(1 << (8 * width - 1)) <= value < 1 << (8 * width - 1):
            return encode_head(tag, kind) + value.to_bytes(width, "big", signed=True)
    raise ValueError(value)


def encode_string(tag, text):
    if len(text) <= 255:
        return encode_head(tag, STRING1) + bytes([len(text)]) + text
    return encode_head(tag, STRING4) + len(text).to_bytes(4, "big") + text


def encode_map(tag, pairs):
    out = encode_head(tag, MAP) + encode_int(0, len(pairs))
    for key, value in pairs:
        out += encode_string(0, key) + encode_string(1, value)
    return out


def encode_bytes(tag, data):
    return encode_head(tag, SIMPLE_LIST) + encode_head(0, INT8) + encode_int(0, len(data)) + data


class TarsPacket(ExtensionField):
    KIND = "tars_packet"
    PYTHON_SOURCES = ("tars_packet.py",)
    CPP_SOURCES = ("tars_packet.h", "tars_packet.cc")
    OUTPUTS = {"request_id": "int", "version": "int", "packet_type": "int", "message_type": "int", "ret": "int",
               "servant": "text", "func": "text", "result_desc": "text"}
    HEADER_MAP = True
    ERROR_MESSAGE = True

    @classmethod
    def decode(cls, data, params):
        r = _Reader(data)
        fields = []  # (tag, kind, start of the head, start of the value)
        while r.pos < len(data):
            start = r.pos
            tag, kind = r.head()
            if kind == STRUCT_END:
                raise ExtensionError("a STRUCT_END outside a struct")
            fields.append((tag, kind, start, r.pos))
            r.skip(kind, 0)
        layout = REQUEST if cls._is_request_packet(fields) else RESPONSE
        values, index = {}, 0
        context_at = context_end = None
        for tag, name, kind, required in layout:
            while index < len(fields) and fields[index][0] < tag:
                index += 1
            if index == len(fields) or fields[index][0] != tag:
                if required:
                    raise ExtensionError(f"the required field {tag} ({name}) is missing")
                if tag == CONTEXT_TAG:
                    context_at = context_end = fields[index][2] if index < len(fields) else len(data)
                continue
            _, wire, start, r.pos = fields[index]
            what = f"field {tag} ({name})"
            if kind == "string":
                values[name] = r.string(wire, what)
            elif kind in ("bytes", "map"):
                if wire != (SIMPLE_LIST if kind == "bytes" else MAP):
                    raise ExtensionError(f"{what}: type {wire} is not a {'simple list' if kind == 'bytes' else 'map'}")
                values[name] = r.simple_list(what) if kind == "bytes" else r.string_map(what)
            else:
                values[name] = r.integer(wire, kind, what)
            if tag == CONTEXT_TAG:
                context_at, context_end = start, r.pos
            index += 1
        ret = values.get("ret", 0)
        if layout is REQUEST:
            code = _latest(values["status"]).get(RESULT_CODE)
            ret = 0 if code is None else _decimal(code)
        outputs = {"request_id": values["request_id"], "version": values["version"],
                   "packet_type": values["packet_type"], "message_type": values["message_type"], "ret": ret,
                   "servant": values.get("servant", b""), "func": values.get("func", b""),
                   "result_desc": values.get("result_desc", b"")}
        return ExtValue(data, outputs, _State(values.get("context", []), context_at, context_end))

    @staticmethod
    def _is_request_packet(fields):
        """Field 5 where a reader looks for it (the first field of tag 5 or more) is a string."""
        fifth = next((f for f in fields if f[0] >= 5), None)
        return fifth is not None and fifth[0] == 5 and fifth[1] in (STRING1, STRING4)

    @classmethod
    def entries(cls, value):
        return list(_latest(value.state.context).items()) if value.state is not None else []

    @classmethod
    def mutate(cls, value, pairs):
        state = value.state
        if state is None:
            return value
        context, changed = list(state.context), False
        for key, text in pairs:
            spelled = False
            for i, (existing, old) in enumerate(context):
                if _lower(existing) == _lower(key):
                    spelled = True
                    if old != text:
                        context[i], changed = (existing, text), True
            if not spelled:
                context.append((key, text))
                changed = True
        if not changed:
            return value
        data = value.data[:state.context_at] + encode_map(CONTEXT_TAG, context) + value.data[state.context_end:]
        return ExtValue(data, value.outputs, _State(context, state.context_at,
                                                     len(data) - (len(value.data) - state.context_end)))

    @classmethod
    def error_value(cls, message, error_type, request_id):
        rid = request_id & 0xFFFFFFFF
        rid = rid - (1 << 32) if rid >= 1 << 31 else rid
        data = (encode_int(1, 1) + encode_int(2, 0) + encode_int(3, rid) + encode_int(4, 0)
                + encode_int(5, ERROR_RET.get(error_type, UNKNOWN_ERROR)) + encode_bytes(6, b"")
                + encode_map(7, []) + encode_string(8, message))
        return cls.decode(data, {})

    @classmethod
    def sample_value(cls, params, outputs, entries):
        """A TARS (iVersion 1) request to ``servant``/``func`` when either output is given, else
        an OK response; ``request_id`` from the outputs (default 1), ``entries`` as the context,
        a 2-byte sBuffer."""
        context, rid = list(entries), outputs.get("request_id", 1)
        if outputs.get("servant") or outputs.get("func"):
            data = (encode_int(1, 1) + encode_int(2, 0) + encode_int(3, 0) + encode_int(4, rid)
                    + encode_string(5, outputs.get("servant", b"")) + encode_string(6, outputs.get("func", b""))
                    + encode_bytes(7, b"\x0c\x0c") + encode_int(8, 3000) + encode_map(9, context) + encode_map(10, []))
        else:
            data = (encode_int(1, 1) + encode_int(2, 0) + encode_int(3, rid) + encode_int(4, 0) + encode_int(5, 0)
                    + encode_bytes(6, b"\x0c\x0c") + encode_map(7, []) + encode_map(CONTEXT_TAG, context))
        return cls.decode(data, params)

    # ------------------------------------------------------------------ random packets

    @classmethod
    def random_value(cls, rng, params):
        request, tup = rng.random() < 0.5, rng.random() < 0.15
        version = rng.choice(TUP_VERSIONS) if tup else 1
        layout = REQUEST if request or tup else RESPONSE
        data, written = b"", 0
        for tag, name, kind, required in layout:
            if rng.random() < 0.1:  # an unknown field, with a tag the readers have passed: skipped
                data += _random_field(rng, rng.randint(0, written), 0)
            if not required and rng.random() < 0.3:
                continue
            written = tag
            if name == "version":
                data += encode_int(tag, version)
            elif name == "status" and tup and not request:
                data += encode_map(tag, [(RESULT_CODE, rng.choice([b"0", b"-4", b"12", b"x"]))])
            elif kind == "string":
                data += encode_string(tag, _random_text(rng))
            elif kind == "bytes":
                data += encode_bytes(tag, bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 40]))))
            elif kind == "map":
                data += encode_map(tag, [(rng.choice(_KEYS), _random_text(rng)) for _ in range(rng.choice([0, 1, 2, 4]))])
            else:
                bits = {INT8: 8, INT16: 16, INT32: 32}[kind]
                value = rng.choice([0, 1, -1, 127, -129, 40000, rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))])
                value = max(-(1 << (bits - 1)), min(value, (1 << (bits - 1)) - 1))
                wide = rng.random() < 0.1 and kind >= INT32  # a wider type than needed, as some writers do
                data += encode_head(tag, INT32) + value.to_bytes(4, "big", signed=True) if wide else encode_int(tag, value)
        if rng.random() < 0.15:
            data += _random_field(rng, rng.choice([11, 20, 200]), 0)
        return cls.decode(data, params)


def _decimal(text):
    """STATUS_RESULT_CODE as an int32 (an optional '-', digits); anything else is -1."""
    body = text[1:] if text[:1] == b"-" else text
    if not body or len(body) > 10 or not all(0x30 <= b <= 0x39 for b in body):
        return -1
    value = int(body) * (-1 if text[:1] == b"-" else 1)
    return value if -(1 << 31) <= value < 1 << 31 else -1


def _random_field(rng, tag, depth):
    kind = rng.choice([INT8, INT16, INT32, INT64, FLOAT, DOUBLE, STRING1, STRING4, MAP, LIST, STRUCT_BEGIN, ZERO,
                       SIMPLE_LIST])
    if depth > 2 and kind in (MAP, LIST, STRUCT_BEGIN):
        kind = ZERO
    head = encode_head(tag, kind)
    if kind in FIXED:
        return head + bytes(rng.randrange(256) for _ in range(FIXED[kind]))
    if kind == STRING1:
        return encode_string(tag, _random_text(rng)[:255])
    if kind == STRING4:
        text = _random_text(rng)
        return head + len(text).to_bytes(4, "big") + text
    if kind == MAP:
        n = rng.randint(0, 2)
        return head + encode_int(0, n) + b"".join(_random_field(rng, i % 2, depth + 1) for i in range(2 * n))
    if kind == LIST:
        n = rng.randint(0, 3)
        return head + encode_int(0, n) + b"".join(_random_field(rng, 0, depth + 1) for _ in range(n))
    if kind == STRUCT_BEGIN:
        return head + b"".join(_random_field(rng, i, depth + 1) for i in range(rng.randint(0, 3))) \
            + encode_head(0, STRUCT_END)
    return encode_bytes(tag, bytes(rng.randrange(256) for _ in range(rng.randint(0, 5))))


_KEYS = [b"user", b"x-tenant", b"X-Tenant", b"STATUS_DYED_KEY", b"", "cl\u00e9".encode(), b"k" * 300]


def _random_text(rng):
    if rng.random() < 0.8:
        return rng.choice([b"", b"Test.HelloServer.HelloObj", b"sayHello", b"canary", "\u00e9t\u00e9".encode(),
                           b"a" * 300, b"\x00\x01"])
    return bytes(rng.choice(b"abcXYZ09-._") for _ in range(rng.randint(0, 40)))
