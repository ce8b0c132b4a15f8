"""``ThriftHeader`` and ``KitexHeader``: the variable header of Thrift's header transports.

Apache THeader and Kitex TTHeader share the outer frame (wire-formats §3.5, §3.6)::

    LENGTH u32 | magic u16 | flags u16 | seqid i32 | header size u16 (4-byte words)
    | header (size x 4 bytes) | payload: a Thrift message, no inner frame length

The extension field is the *header*. Spec: ``Rebuild(Int16ub, len_(this.header) // 4)`` for
the size and ``ThriftHeader(this.header_words * 4)`` for the field; every header this
extension writes is a multiple of 4 bytes.

``ThriftHeader`` (Apache THeader, magic 0x0FFF): protocol id, transform count and transform
ids as uvarints (at most 5 bytes, at most 2^32 - 1), then info blocks: an info id (uvarint);
1 = KEY_VALUE: a count, then count x (key, value), each a uvarint length and the bytes. Id 0
(padding) or any other id ends the info blocks, as in Apache's readers: the rest of the
header is skipped.

``KitexHeader`` (Kitex TTHeader, magic 0x1000): the same with fixed widths: protocol id,
transform count and transform ids u8, info id u8; 0x00 is one byte of padding (skipped),
0x01 KEY_VALUE (u16 count, strings with a u16 length), 0x10 INT_KEY_VALUE (u16 count, u16 key
and string value), 0x11 the ACL token (one string); any other id is an error, as in Kitex.
Outputs ``from_service`` (int key 3), ``to_service`` (6), ``to_method`` (9) and
``from_method`` (20), Kitex's routing information (the last one wins).

Both accept the binary protocol only (protocol id 0) and no transforms: a transformed (zlib)
payload cannot be routed (Kitex writes none and ignores the ids). A header holds at least the
protocol id and the transform count and at most what the peers read: 16383 words (Apache's C++
reader) or 65536 bytes (Kitex until gopkg's 4 x 65535 of December 2025). Uvarints are capped at
5 bytes and 32 bits (Apache's C++ reader reads varint32 without the byte cap).

``entries``: the string key/values; when a key repeats, the last value wins, as in every
reader's map (and, as keys are published lower-cased, the last of a key's case variants). ``mutate`` appends one KEY_VALUE block with the pairs whose value differs
(a key that matches existing keys case-insensitively is written with each existing spelling,
so the application reads it under the name it uses), at the point where the readers stop
(Apache: the first padding or unknown id; Kitex: the trailing padding), then pads to 4 bytes.
Readers keep the last value of a key, so appending also replaces. The header is left as it
is when nothing differs, or when the result would break the transport's limits (the header
size above, or with Kitex a count, key or value over 65535 bytes).
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # codecgen: embedded

BINARY = 0
KEY_VALUE = 1
INT_KEY_VALUE = 0x10
ACL_TOKEN = 0x11
KITEX_INT_KEYS = {3: "from_service", 6: "to_service", 9: "to_method", 20: "from_method"}
MAX_APACHE_HEADER = 16383 * 4
MAX_KITEX_HEADER = 65536
U16_MAX = 0xFFFF


def encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _lower(data):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in data)


class _Reader:
    """Reads one header: ``kitex`` picks fixed-width integers instead of uvarints."""

    def __init__(self, data, kitex):
        self.data, self.kitex, self.pos = data, kitex, 0

    def _take(self, n, what):
        if n > len(self.data) - self.pos:
            raise ExtensionError(f"{what} runs past the end of the header")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def varint(self, what):
        value = 0
        for i in range(5):
            byte = self._take(1, what)[0]
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if value > 0xFFFFFFFF:
                    raise ExtensionError(f"{what}: varint over 32 bits")
                return value
        raise ExtensionError(f"{what}: varint longer than 5 bytes")

    def u8(self, what):
        return self.varint(what) if not self.kitex else self._take(1, what)[0]

    def u16(self, what):
        if not self.kitex:
            return self.varint(what)
        chunk = self._take(2, what)
        return chunk[0] << 8 | chunk[1]

    def string(self, what):
        return self._take(self.u16(what), what)


class _State:
    __slots__ = ("pairs", "insert_at")

    def __init__(self, pairs, insert_at):
        self.pairs = pairs  # (key, value) bytes in wire order
        self.insert_at = insert_at  # where an appended info block goes


def _latest(pairs):
    """Each key once, with its last value, ordered by where that last value is: published in
    this order (keys lower-cased), the last of a key's case variants wins too."""
    latest = {}
    for key, value in pairs:
        latest.pop(key, None)
        latest[key] = value
    return latest


class _Header(ExtensionField):
    KITEX = False
    MAX_HEADER = MAX_APACHE_HEADER
    PYTHON_SOURCES = ("thrift_header.py",)
    CPP_SOURCES = ("thrift_header.h", "thrift_header.cc")
    HEADER_MAP = True

    @classmethod
    def decode(cls, data, params):
        n = len(data)
        if n < 2:
            raise ExtensionError(f"the header is {n} bytes; it holds at least the protocol id and the transform count")
        if n > cls.MAX_HEADER:
            raise ExtensionError(f"the header is {n} bytes, over the limit of {cls.MAX_HEADER}")
        r = _Reader(data, cls.KITEX)
        protocol = r.u8("protocol id")
        if protocol != BINARY:
            raise ExtensionError(f"protocol id {protocol}: only the binary protocol (0) is supported")
        transforms = r.u8("transform count")
        if transforms:
            raise ExtensionError(f"{transforms} payload transform(s): a transformed payload cannot be routed")
        pairs, ints = [], {}
        insert_at = r.pos
        while r.pos < n:
            at = r.pos
            info = r.u8("info id")
            if info == KEY_VALUE:
                for _ in range(r.u16("key/value count")):
                    pairs.append((r.string("key"), r.string("value")))
            elif not cls.KITEX:
                insert_at = at  # padding or an unknown block: Apache's readers stop here
                break
            elif info == 0:
                continue  # one byte of padding
            elif info == INT_KEY_VALUE:
                for _ in range(r.u16("int key/value count")):
                    key = r.u16("int key")
                    ints[key] = r.string("int key value")
            elif info == ACL_TOKEN:
                r.string("ACL token")
            else:
                raise ExtensionError(f"info id 0x{info:02x} is not a TTHeader info block")
            insert_at = r.pos
        outputs = {name: ints.get(key, b"") for key, name in KITEX_INT_KEYS.items()} if cls.KITEX else {}
        return ExtValue(data, outputs, _State(pairs, insert_at))

    @classmethod
    def entries(cls, value):
        return list(_latest(value.state.pairs).items()) if value.state else []

    @classmethod
    def mutate(cls, value, pairs):
        state = value.state
        if state is None:
            return value
        latest = _latest(state.pairs)
        block = []
        for key, text in pairs:
            spellings = [k for k in latest if _lower(k) == _lower(key)] or [key]
            block += [(spelling, text) for spelling in spellings if latest.get(spelling) != text]
        if not block:
            return value
        if cls.KITEX and (len(block) > U16_MAX or any(len(k) > U16_MAX or len(v) > U16_MAX for k, v in block)):
            return value
        head, tail = value.data[:state.insert_at], value.data[state.insert_at:]
        if not any(tail):
            tail = b""  # padding only: padded again below
        data = head + cls._block(block) + tail
        data += bytes(-len(data) % 4)
        if len(data) > cls.MAX_HEADER:
            return value
        return cls.decode(data, {})

    @classmethod
    def _block(cls, pairs):
        if cls.KITEX:
            out = bytes([KEY_VALUE]) + len(pairs).to_bytes(2, "big")
            for key, text in pairs:
                out += len(key).to_bytes(2, "big") + key + len(text).to_bytes(2, "big") + text
            return out
        out = encode_varint(KEY_VALUE) + encode_varint(len(pairs))
        for key, text in pairs:
            out += encode_varint(len(key)) + key + encode_varint(len(text)) + text
        return out

    @classmethod
    def sample_value(cls, params, outputs, entries):
        """Binary protocol, no transforms, ``entries`` as one key/value block; Kitex's int keys
        from the outputs (to_service, ...)."""
        small = (lambda v: bytes([v])) if cls.KITEX else encode_varint
        data = small(BINARY) + small(0)
        ints = [(key, outputs[name]) for key, name in KITEX_INT_KEYS.items() if outputs.get(name)]
        if ints:
            data += bytes([INT_KEY_VALUE]) + len(ints).to_bytes(2, "big")
            for key, text in ints:
                data += key.to_bytes(2, "big") + len(text).to_bytes(2, "big") + text
        if entries:
            data += cls._block(list(entries))
        data += bytes(-len(data) % 4)
        return cls.decode(data, params)

    # ------------------------------------------------------------------ random headers

    @classmethod
    def random_value(cls, rng, params):
        kitex = cls.KITEX
        small = (lambda v: bytes([v])) if kitex else encode_varint
        data = bytearray(small(BINARY) if kitex or rng.random() < 0.9 else b"\x80\x00")  # a long zero
        data += small(0)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            kind = rng.random()
            if kitex and kind < 0.2:
                data += bytes(rng.randint(1, 3))  # padding inside the info blocks
            elif kitex and kind < 0.45:
                keys = [rng.choice([3, 6, 9, 20, 1, 12, 22, 300]) for _ in range(rng.choice([0, 1, 2, 4]))]
                data += bytes([INT_KEY_VALUE]) + len(keys).to_bytes(2, "big")
                for key in keys:
                    text = _random_text(rng)
                    data += key.to_bytes(2, "big") + len(text).to_bytes(2, "big") + text
            elif kitex and kind < 0.55:
                token = _random_text(rng)
                data += bytes([ACL_TOKEN]) + len(token).to_bytes(2, "big") + token
            else:
                data += cls._block([(rng.choice(_KEYS), _random_text(rng)) for _ in range(rng.choice([0, 1, 2, 3, 5]))])
        if not kitex and rng.random() < 0.15:
            data += encode_varint(rng.choice([2, 7, 200])) + bytes(rng.randrange(256) for _ in range(rng.randint(0, 6)))
            if rng.random() < 0.5:  # a key/value block after it: Apache's readers never see it
                data += cls._block([(b"hidden", b"1")])
        data += bytes(-len(data) % 4 + 4 * rng.choice([0, 0, 0, 1]))
        return cls.decode(bytes(data), params)


_KEYS = [b"user", b"x-trace", b"X-Trace", b"isn", b"env", b"rpc_persist_tenant", b"", "cl\u00e9".encode()]


def _random_text(rng):
    if rng.random() < 0.8:
        return rng.choice([b"", b"alice", b"canary", b"1", "\u00e9t\u00e9".encode(), b"a" * 130, b"\x00\x01"])
    return bytes(rng.choice(b"abcXYZ09-._") for _ in range(rng.randint(0, 40)))


class ThriftHeader(_Header):
    KIND = "thrift_header"


class KitexHeader(_Header):
    KIND = "kitex_header"
    KITEX = True
    MAX_HEADER = MAX_KITEX_HEADER
    OUTPUTS = {name: "text" for name in KITEX_INT_KEYS.values()}
