"""``ProtobufMessage``: a header that is one protobuf message, read at the wire level.

The runtime of the protobuf extension field type (``codecgen.ext.protobuf``). A class made by
``protobuf_header`` from the user's ``.proto`` subclasses ``ProtobufMessage`` and sets:

``SCHEMAS``     one tree per direction (request, response; the same tree twice when one message
                serves both): ``{field number: (kind, output name | None | subtree)}``, holding
                only the fields the spec uses: outputs, nested messages leading to outputs,
                and the header map.
``MAP_FIELDS``  per direction, the number of the top-level ``map<string, string|bytes>`` field
                that is the header map (0: none).
``ERROR``       the error reply: ``(field numbers, kind, what, value)`` rows of the response
                message, ``what`` one of "request_id", "error_code" (value: ``{ErrorType int:
                code}`` plus the default under None), "error_message", "literal".
``MAX_SIZE``    the largest header the frame can carry (a mutation beyond it is not applied).

Reading follows protobuf's parsers: fields in any order; a field repeated on the wire keeps its
last value (a nested message's occurrences merge, so each leaf keeps its last value too); a
declared field with another wire type is unknown, like every undeclared field, skipped and
kept. Varints are at most 10 bytes (bits past 64 dropped); the group wire types (3, 4) and the
invalid ones (6, 7) are refused, as are lengths past the end of their message. Strings are not
checked for UTF-8. A map entry's missing key or value is empty.

``entries``: the map's entries, the last value of a repeated key winning, in the order of
those last values. ``mutate`` appends one map entry per pair whose value differs (a key equal
to existing keys but for case is written under each existing spelling), after everything
else: parsers keep the last entry of a key, so appending also replaces, and the message's
bytes, unknown fields included, are kept as they are and moved, not rewritten.
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # codecgen: embedded

VARINT, I64, LEN, I32 = 0, 1, 2, 5
MASK64 = (1 << 64) - 1
# kind -> wire type; the integer kinds' values are int outputs, BYTES' are text outputs.
WIRE_TYPES = {
    "int32": VARINT, "int64": VARINT, "uint32": VARINT, "uint64": VARINT, "sint32": VARINT,
    "sint64": VARINT, "bool": VARINT, "fixed32": I32, "sfixed32": I32, "fixed64": I64,
    "sfixed64": I64, "bytes": LEN, "message": LEN, "map": LEN,
}
INT_KINDS = frozenset(k for k, w in WIRE_TYPES.items() if w != LEN)


def _signed(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def int_value(kind, raw):
    """An int output from a field's raw wire value (varint or fixed, unsigned), as int64."""
    if kind in ("int32", "sfixed32"):
        return _signed(raw, 32)
    if kind in ("uint32", "fixed32"):
        return raw & 0xFFFFFFFF
    if kind == "sint32":
        raw &= 0xFFFFFFFF
        return (raw >> 1) ^ -(raw & 1)
    if kind == "sint64":
        return (raw >> 1) ^ -(raw & 1)
    if kind == "bool":
        return int(raw != 0)
    return _signed(raw, 64)  # int64, uint64, fixed64, sfixed64: the 64 bits as int64


def wire_int(kind, value):
    """The raw unsigned wire value that writes ``value`` into a field of ``kind``."""
    if kind == "sint32":
        value = _signed(value, 32)
        return ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF
    if kind == "sint64":
        value = _signed(value, 64)
        return ((value << 1) ^ (value >> 63)) & MASK64
    if kind == "bool":
        return int(value != 0)
    if kind in ("uint32", "fixed32", "sfixed32"):
        return value & 0xFFFFFFFF
    if kind == "int32":
        return _signed(value, 32) & MASK64  # a negative int32 is a 10-byte varint
    return value & MASK64


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number, kind, value):
    """One field's bytes: ``value`` an int for the integer kinds, bytes otherwise."""
    wire = WIRE_TYPES[kind]
    tag = varint(number << 3 | wire)
    if wire == VARINT:
        return tag + varint(wire_int(kind, value))
    if wire == I32:
        return tag + wire_int(kind, value).to_bytes(4, "little")
    if wire == I64:
        return tag + wire_int(kind, value).to_bytes(8, "little")
    return tag + varint(len(value)) + value


def map_entry(number, key, value):
    return field(number, "bytes", field(1, "bytes", key) + field(2, "bytes", value))


def fields(data):
    """(number, wire type, value) of each field of a message: an int, or the bytes of LEN."""
    pos, n = 0, len(data)

    def read_varint(what):
        nonlocal pos
        value = 0
        for i in range(10):
            if pos >= n:
                raise ExtensionError(f"protobuf: {what} runs past the end of the message")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value & MASK64
        raise ExtensionError(f"protobuf: {what} is a varint longer than 10 bytes")

    while pos < n:
        key = read_varint("a field key")
        number, wire = key >> 3, key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise ExtensionError(f"protobuf: field number {number} is out of range")
        if wire == VARINT:
            yield number, wire, read_varint(f"field {number}")
            continue
        if wire == LEN:
            size = read_varint(f"the length of field {number}")
        elif wire in (I32, I64):
            size = 4 if wire == I32 else 8
        else:
            raise ExtensionError(f"protobuf: field {number} has wire type {wire} "
                                 f"({'a group' if wire in (3, 4) else 'invalid'})")
        if size > n - pos:
            raise ExtensionError(f"protobuf: field {number} runs past the end of the message")
        chunk = data[pos:pos + size]
        pos += size
        yield number, wire, int.from_bytes(chunk, "little") if wire != LEN else chunk


def _lower(data):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in data)


def _latest(pairs):
    latest = {}
    for key, value in pairs:
        latest.pop(key, None)
        latest[key] = value
    return latest


class _State:
    __slots__ = ("direction", "pairs")

    def __init__(self, direction, pairs):
        self.direction = direction
        self.pairs = pairs  # the header map's (key, value) entries in wire order


class ProtobufMessage(ExtensionField):
    SCHEMAS = ({}, {})
    MAP_FIELDS = (0, 0)
    ERROR = ()
    MAX_SIZE = 0xFFFFFFFF

    @classmethod
    def _direction(cls, params):
        return 1 if params.get("direction", 0) else 0

    @classmethod
    def decode(cls, data, params):
        direction = cls._direction(params)
        if len(data) > cls.MAX_SIZE:
            raise ExtensionError(f"protobuf: the header is {len(data)} bytes, over the limit of {cls.MAX_SIZE}")
        outputs = {name: (0 if what == "int" else b"") for name, what in cls.OUTPUTS.items()}
        pairs = []
        cls._read(data, cls.SCHEMAS[direction], cls.MAP_FIELDS[direction], outputs, pairs)
        return ExtValue(data, outputs, _State(direction, pairs))

    @classmethod
    def _read(cls, data, tree, map_field, outputs, pairs):
        for number, wire, value in fields(data):
            if number == map_field and wire == LEN:
                key, text = b"", b""
                for inner, inner_wire, part in fields(value):
                    if inner_wire == LEN and inner == 1:
                        key = part
                    elif inner_wire == LEN and inner == 2:
                        text = part
                pairs.append((key, text))
                continue
            spec = tree.get(number)
            if spec is None or WIRE_TYPES[spec[0]] != wire:
                continue  # unknown, or a declared field with another wire type: unknown too
            kind, target = spec
            if kind == "message":
                cls._read(value, target, 0, outputs, pairs)
            elif kind == "bytes":
                outputs[target] = bytes(value)
            else:
                outputs[target] = int_value(kind, value)

    @classmethod
    def entries(cls, value):
        return list(_latest(value.state.pairs).items()) if value.state else []

    @classmethod
    def mutate(cls, value, pairs):
        state = value.state
        number = cls.MAP_FIELDS[state.direction] if state else 0
        if not number:
            return value
        latest = _latest(state.pairs)
        added = b""
        for key, text in pairs:
            spellings = [k for k in latest if _lower(k) == _lower(key)] or [key]
            for spelling in spellings:
                if latest.get(spelling) != text:
                    added += map_entry(number, spelling, text)
        if not added or len(value.data) + len(added) > cls.MAX_SIZE:
            return value
        return cls.decode(value.data + added, {"direction": state.direction})

    @classmethod
    def error_value(cls, message, error_type, request_id):
        values = {}
        for path, kind, what, literal in cls.ERROR:
            if what == "request_id":
                values[path] = (kind, request_id)
            elif what == "error_code":
                values[path] = (kind, literal.get(error_type, literal[None]))
            elif what == "error_message":
                values[path] = (kind, bytes(message))
            else:
                values[path] = (kind, literal)
        return cls.decode(_encode_tree(values, ()), {"direction": 1})

    @classmethod
    def sample_value(cls, params, outputs, entries):
        """A message with the given outputs (text, and int ones such as a request id) and the
        header map's entries, for the sample tools."""
        direction = cls._direction(params)
        values = {}
        for path, kind, name in _leaves(cls.SCHEMAS[direction], ()):
            if outputs.get(name):
                values[path] = (kind, outputs[name])
        data = _encode_tree(values, ())
        number = cls.MAP_FIELDS[direction]
        if entries and not number:
            return None
        data += b"".join(map_entry(number, k, v) for k, v in entries)
        return cls.decode(data, params)

    # ------------------------------------------------------------------ random headers

    @classmethod
    def random_value(cls, rng, params):
        direction = cls._direction(params)
        data = _random_message(rng, cls.SCHEMAS[direction], cls.MAP_FIELDS[direction], 0)
        return cls.decode(data, params) if len(data) <= cls.MAX_SIZE else None


def _leaves(tree, prefix):
    for number, (kind, target) in sorted(tree.items()):
        if kind == "message":
            yield from _leaves(target, prefix + (number,))
        else:
            yield prefix + (number,), kind, target


def _encode_tree(values, prefix):
    """The message holding ``values`` ({field numbers: (kind, value)}), in field number order;
    zero and empty values are left out, as proto3 writers do."""
    out = b""
    for number in sorted({path[len(prefix)] for path in values if path[:len(prefix)] == prefix}):
        here = prefix + (number,)
        if here in values:
            kind, value = values[here]
            if value:
                out += field(number, kind, value)
        else:
            inner = _encode_tree(values, here)
            out += field(number, "message", inner)
    return out


_TEXTS = [b"", b"alice", b"trpc.app.server.Greeter", b"/trpc.test.Greeter/SayHello", "\u00e9t\u00e9".encode(),
          b"a" * 130, b"\x00\xff"]
_KEYS = [b"trpc-env", b"app-user", b"App-User", b"x-trace", b"", "cl\u00e9".encode()]
_INTS = [0, 1, 7, 127, 128, 300, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1, -1, -(1 << 31), -(1 << 63)]


def _random_message(rng, tree, map_field, depth):
    parts = []
    for number, (kind, target) in tree.items():
        for _ in range(rng.choice([0, 1, 1, 1, 2])):  # absent, once, or repeated (last wins)
            if kind == "message":
                parts.append(field(number, kind, _random_message(rng, target, 0, depth + 1)))
            elif kind == "bytes":
                parts.append(field(number, kind, rng.choice(_TEXTS)))
            else:
                parts.append(field(number, kind, rng.choice(_INTS) if rng.random() < 0.8 else rng.getrandbits(64)))
        if rng.random() < 0.1:  # a declared number with another wire type: unknown to readers
            parts.append(field(number, "fixed32" if WIRE_TYPES[kind] != I32 else "bytes",
                               1 if WIRE_TYPES[kind] != I32 else b"x"))
    if map_field:
        for _ in range(rng.choice([0, 1, 2, 4])):
            entry = b""
            if rng.random() < 0.95:
                entry += field(1, "bytes", rng.choice(_KEYS))
            if rng.random() < 0.95:
                entry += field(2, "bytes", rng.choice(_TEXTS))
            if rng.random() < 0.1:
                entry += field(3, "uint32", 5)  # an unknown field inside an entry
            parts.append(field(map_field, "bytes", entry))
    for _ in range(rng.choice([0, 0, 1, 2])):  # unknown fields of every wire type
        number = rng.choice([13, 15, 16, 100, 2047, 2048, 536870911])
        kind = rng.choice(["uint64", "fixed32", "fixed64", "bytes"])
        parts.append(field(number, kind, rng.getrandbits(30) if kind != "bytes" else rng.choice(_TEXTS)))
    rng.shuffle(parts)
    data = b"".join(parts)
    if rng.random() < 0.05:  # an unknown field 14 holding 0 as a non-minimal, two-byte varint
        data += b"\x70\x80\x00"
    return data
