"""A small Hessian 2.0 library, as dubbo-hessian-lite writes and reads it (Python side).

Its C++ twin is ``hessian2.h``/``hessian2.cc`` beside this file; the two must agree on every
input, which ``codecgen verify`` checks through the extensions built on them (``DubboBody``).

Reading (``Reader``) parses bytes from the network, so every read is bounds-checked and
every loop is bounded by the bytes left: each Hessian value takes at least one byte, so a
count larger than the bytes left is refused before looping. Nesting is limited to
``MAX_DEPTH``; class definitions are followed (their field counts are kept per stream), and
references (``0x51``) are skipped without being resolved.

Strings are lengths in UTF-16 units over UTF-8 bytes: a 1-, 2- or 3-byte sequence is one
unit (surrogate halves are written as two 3-byte sequences), a 4-byte sequence (written by
non-Java peers) is two. ``read_string`` returns the string's bytes as they are on the wire
(all chunks joined), never re-encoded, so the same bytes come out of both engines.

Writing: ``encode_string`` turns UTF-8 bytes into the form hessian-lite reads (4-byte
sequences become surrogate pairs; an invalid byte becomes U+FFFD), ``encode_string_map``
writes an untyped ``H ... Z`` map of strings, and ``Writer`` writes any value (tests and
random frames use it).

This file is embedded into generated reference codecs: it imports only the standard library.
"""

import struct

MAX_DEPTH = 64  # containers nested deeper than this are refused
CHUNK_UNITS = 0x8000  # the longest string chunk hessian-lite writes

_N, _Z = 0x4E, 0x5A
_RESERVED = (0x40, 0x45, 0x47, 0x50)


class Hessian2Error(ValueError):
    """The bytes are not valid Hessian 2 (the C++ side throws EnvoyException)."""


def is_string_start(code):
    """True when ``code`` starts a string (compact, medium, final 'S' or chunk 'R')."""
    return code <= 0x1F or 0x30 <= code <= 0x33 or code in (0x52, 0x53)


def is_binary_start(code):
    return 0x20 <= code <= 0x2F or 0x34 <= code <= 0x37 or code in (0x41, 0x42)


class Reader:
    """Reads Hessian 2 values from ``data[pos:end]``; one Reader is one Hessian stream."""

    def __init__(self, data, pos=0, end=None):
        self.data = bytes(data)
        self.pos = pos
        self.end = len(self.data) if end is None else end
        self.class_fields = []  # field count of each class definition, in stream order

    # ------------------------------------------------------------------ bytes

    def remaining(self):
        return self.end - self.pos

    def peek(self):
        if self.pos >= self.end:
            raise Hessian2Error(f"value truncated at offset {self.pos}")
        return self.data[self.pos]

    def byte(self):
        code = self.peek()
        self.pos += 1
        return code

    def skip(self, n):
        if n < 0 or n > self.end - self.pos:
            raise Hessian2Error(f"value needs {n} bytes at offset {self.pos}, {self.end - self.pos} left")
        self.pos += n

    def take(self, n):
        start = self.pos
        self.skip(n)
        return self.data[start:self.pos]

    def _uint(self, n):
        return int.from_bytes(self.take(n), "big")

    def _sint(self, n):
        return int.from_bytes(self.take(n), "big", signed=True)

    # ------------------------------------------------------------------ scalars

    def read_int(self):
        """An int production (also the long forms, as hessian-lite's readInt accepts them)."""
        code = self.byte()
        if 0x80 <= code <= 0xBF:
            return code - 0x90
        if 0xC0 <= code <= 0xCF:
            return ((code - 0xC8) << 8) + self._uint(1)
        if 0xD0 <= code <= 0xD7:
            return ((code - 0xD4) << 16) + self._uint(2)
        if code in (0x49, 0x59):  # 'I', long as int32
            return self._sint(4)
        if 0xD8 <= code <= 0xEF:
            return code - 0xE0
        if 0xF0 <= code <= 0xFF:
            return ((code - 0xF8) << 8) + self._uint(1)
        if 0x38 <= code <= 0x3F:
            return ((code - 0x3C) << 16) + self._uint(2)
        if code == 0x4C:  # 'L'
            return self._sint(8)
        raise Hessian2Error(f"expected an integer at offset {self.pos - 1}, found 0x{code:02x}")

    def _count(self, what):
        """A count (list length, field count) that must fit the bytes left."""
        count = self.read_int()
        if count < 0 or count > self.remaining():
            raise Hessian2Error(f"{what} {count} at offset {self.pos} exceeds the {self.remaining()} bytes left")
        return count

    # ------------------------------------------------------------------ strings

    def _units(self, n):
        """Consume ``n`` UTF-16 units of UTF-8 bytes."""
        units = 0
        while units < n:
            lead = self.byte()
            if lead < 0x80:
                units += 1
            elif lead & 0xE0 == 0xC0:
                self.skip(1)
                units += 1
            elif lead & 0xF0 == 0xE0:
                self.skip(2)
                units += 1
            elif lead & 0xF8 == 0xF0:
                self.skip(3)
                units += 2
            else:
                raise Hessian2Error(f"invalid UTF-8 lead byte 0x{lead:02x} at offset {self.pos - 1}")
        if units != n:
            raise Hessian2Error(f"a 4-byte character crosses the string length at offset {self.pos}")

    def _string_after(self, code):
        """The bytes of a string whose first code byte was just read."""
        parts = []
        while True:
            if code <= 0x1F:
                n, final = code, True
            elif 0x30 <= code <= 0x33:
                n, final = ((code - 0x30) << 8) + self._uint(1), True
            elif code in (0x52, 0x53):
                n, final = self._uint(2), code == 0x53
            else:
                raise Hessian2Error(f"expected a string at offset {self.pos - 1}, found 0x{code:02x}")
            start = self.pos
            self._units(n)
            parts.append(self.data[start:self.pos])
            if final:
                return b"".join(parts)
            code = self.byte()

    def read_string(self):
        """A string's bytes (chunks joined); anything else is an error."""
        return self._string_after(self.byte())

    def read_string_or_null(self):
        if self.peek() == _N:
            self.pos += 1
            return None
        return self.read_string()

    def _skip_binary(self, code):
        while True:
            if 0x20 <= code <= 0x2F:
                self.skip(code - 0x20)
                return
            if 0x34 <= code <= 0x37:
                self.skip(((code - 0x34) << 8) + self._uint(1))
                return
            if code in (0x41, 0x42):
                self.skip(self._uint(2))
                if code == 0x42:
                    return
                code = self.byte()
                continue
            raise Hessian2Error(f"expected a binary chunk at offset {self.pos - 1}, found 0x{code:02x}")

    # ------------------------------------------------------------------ any value

    def _skip_type(self):
        """A type after M, 0x55, V or 0x70-0x77: a type name (string) or a type-table index."""
        if is_string_start(self.peek()):
            self.read_string()
        else:
            self.read_int()

    def _class_definition(self):
        """After 'C': class name, field count, field names; the count is kept."""
        self.read_string()
        count = self._count("field count")
        for _ in range(count):
            self.read_string()
        self.class_fields.append(count)

    def _object(self, index, depth):
        if index < 0 or index >= len(self.class_fields):
            raise Hessian2Error(f"object of undefined class #{index} at offset {self.pos}")
        for _ in range(self.class_fields[index]):
            self.skip_value(depth + 1)

    def _until_end(self, depth, pairs):
        while self.peek() != _Z:
            self.skip_value(depth + 1)
            if pairs:
                self.skip_value(depth + 1)
        self.pos += 1

    def skip_value(self, depth=0):
        """Consume one value of any type (a class definition before it included)."""
        if depth > MAX_DEPTH:
            raise Hessian2Error(f"values nested deeper than {MAX_DEPTH} at offset {self.pos}")
        code = self.byte()
        while code == 0x43:  # 'C': definitions prefix the value that follows
            self._class_definition()
            code = self.byte()
        if is_string_start(code):
            self._string_after(code)
        elif is_binary_start(code):
            self._skip_binary(code)
        elif code in _RESERVED:
            raise Hessian2Error(f"reserved code 0x{code:02x} at offset {self.pos - 1}")
        elif code == _Z:
            raise Hessian2Error(f"'Z' outside a list or map at offset {self.pos - 1}")
        elif code in (0x46, 0x54, _N, 0x5B, 0x5C) or 0x80 <= code <= 0xBF or 0xD8 <= code <= 0xEF:
            pass  # F, T, N, 0.0, 1.0, compact int and long
        elif code == 0x5D or 0xC0 <= code <= 0xCF or 0xF0 <= code <= 0xFF:
            self.skip(1)
        elif code == 0x5E or 0xD0 <= code <= 0xD7 or 0x38 <= code <= 0x3F:
            self.skip(2)
        elif code in (0x49, 0x4B, 0x59, 0x5F):
            self.skip(4)
        elif code in (0x44, 0x4A, 0x4C):
            self.skip(8)
        elif code == 0x48:  # H untyped map
            self._until_end(depth, pairs=True)
        elif code == 0x4D:  # M typed map
            self._skip_type()
            self._until_end(depth, pairs=True)
        elif code == 0x4F:  # O object
            self._object(self.read_int(), depth)
        elif 0x60 <= code <= 0x6F:
            self._object(code - 0x60, depth)
        elif code == 0x51:  # reference
            self.read_int()
        elif code == 0x55:  # variable-length typed list
            self._skip_type()
            self._until_end(depth, pairs=False)
        elif code == 0x57:  # variable-length untyped list
            self._until_end(depth, pairs=False)
        elif code == 0x56:  # fixed-length typed list
            self._skip_type()
            for _ in range(self._count("list length")):
                self.skip_value(depth + 1)
        elif code == 0x58:  # fixed-length untyped list
            for _ in range(self._count("list length")):
                self.skip_value(depth + 1)
        elif 0x70 <= code <= 0x77:
            self._skip_type()
            for _ in range(code - 0x70):
                self.skip_value(depth + 1)
        else:  # 0x78-0x7F
            for _ in range(code - 0x78):
                self.skip_value(depth + 1)

    def read_string_map(self):
        """An untyped (H) or typed (M) map: (string pairs, string keys, offset of its 'Z').

        Entries whose key and value are both strings are returned in order; every string
        key is listed in ``keys`` (whatever its value); other entries are skipped.
        """
        code = self.byte()
        if code == 0x4D:
            self._skip_type()
        elif code != 0x48:
            raise Hessian2Error(f"expected a map at offset {self.pos - 1}, found 0x{code:02x}")
        pairs, keys = [], []
        while self.peek() != _Z:
            key = self.read_string() if is_string_start(self.peek()) else self.skip_value(1)
            value = self.read_string() if is_string_start(self.peek()) else self.skip_value(1)
            if key is not None:
                keys.append(key)
                if value is not None:
                    pairs.append((key, value))
        at = self.pos
        self.pos += 1
        return pairs, keys, at


# ---------------------------------------------------------------------------- writing


def _units_of(data):
    """UTF-8 bytes -> one bytes object per UTF-16 unit, as hessian-lite writes them."""
    units, i, n = [], 0, len(data)
    while i < n:
        lead = data[i]
        if lead < 0x80:
            units.append(data[i:i + 1])
            i += 1
            continue
        if 0xC2 <= lead <= 0xDF and i + 1 < n and _cont(data[i + 1]):
            units.append(data[i:i + 2])
            i += 2
            continue
        if 0xE0 <= lead <= 0xEF and i + 2 < n and _cont(data[i + 1]) and _cont(data[i + 2]):
            units.append(data[i:i + 3])
            i += 3
            continue
        if 0xF0 <= lead <= 0xF4 and i + 3 < n and all(_cont(b) for b in data[i + 1:i + 4]):
            cp = ((lead & 0x07) << 18) | ((data[i + 1] & 0x3F) << 12) | ((data[i + 2] & 0x3F) << 6) \
                | (data[i + 3] & 0x3F)
            if 0x10000 <= cp <= 0x10FFFF:
                cp -= 0x10000
                units.append(_utf8_3(0xD800 + (cp >> 10)))
                units.append(_utf8_3(0xDC00 + (cp & 0x3FF)))
                i += 4
                continue
        units.append(b"\xef\xbf\xbd")  # U+FFFD for a byte that starts no valid sequence
        i += 1
    return units


def _cont(byte):
    return 0x80 <= byte <= 0xBF


def _utf8_3(unit):
    return bytes((0xE0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3F), 0x80 | (unit & 0x3F)))


def _is_high_surrogate(unit):
    return len(unit) == 3 and unit[0] == 0xED and 0xA0 <= unit[1] <= 0xAF


def encode_string(data):
    """A Hessian string holding UTF-8 ``data`` (bytes), written as hessian-lite does."""
    units = _units_of(bytes(data))
    out = bytearray()
    while len(units) > CHUNK_UNITS:
        size = CHUNK_UNITS - 1 if _is_high_surrogate(units[CHUNK_UNITS - 1]) else CHUNK_UNITS
        out += b"R" + size.to_bytes(2, "big") + b"".join(units[:size])
        units = units[size:]
    n = len(units)
    if n <= 0x1F:
        out.append(n)
    elif n <= 0x3FF:
        out += bytes((0x30 + (n >> 8), n & 0xFF))
    else:
        out += b"S" + n.to_bytes(2, "big")
    out += b"".join(units)
    return bytes(out)


def encode_string_map(pairs):
    """An untyped map ``H (key value)* Z`` of strings."""
    return b"H" + b"".join(encode_string(k) + encode_string(v) for k, v in pairs) + b"Z"


class Writer:
    """Writes values in the shortest forms hessian-lite uses (plus chunking on request)."""

    def __init__(self):
        self.out = bytearray()
        self.classes = []  # class names defined so far
        self.types = []  # type names written so far
        self.refs = 0  # lists, maps and objects written so far (reference indices)

    def getvalue(self):
        return bytes(self.out)

    def null(self):
        self.out.append(_N)

    def bool(self, value):
        self.out.append(0x54 if value else 0x46)

    def int(self, v):
        if -0x10 <= v <= 0x2F:
            self.out.append(0x90 + v)
        elif -0x800 <= v <= 0x7FF:
            self.out += bytes((0xC8 + (v >> 8), v & 0xFF))
        elif -0x40000 <= v <= 0x3FFFF:
            self.out += bytes((0xD4 + (v >> 16), (v >> 8) & 0xFF, v & 0xFF))
        else:
            self.out += b"I" + struct.pack(">i", v)

    def long(self, v):
        if -8 <= v <= 15:
            self.out.append(0xE0 + v)
        elif -0x800 <= v <= 0x7FF:
            self.out += bytes((0xF8 + (v >> 8), v & 0xFF))
        elif -0x40000 <= v <= 0x3FFFF:
            self.out += bytes((0x3C + (v >> 16), (v >> 8) & 0xFF, v & 0xFF))
        elif -(1 << 31) <= v < (1 << 31):
            self.out += b"\x59" + struct.pack(">i", v)
        else:
            self.out += b"L" + struct.pack(">q", v)

    def double(self, v):
        if v == 0.0:
            self.out.append(0x5B)
        elif v == 1.0:
            self.out.append(0x5C)
        elif v == int(v) and -0x80 <= v < 0x80:
            self.out += b"\x5d" + struct.pack(">b", int(v))
        elif v == int(v) and -0x8000 <= v < 0x8000:
            self.out += b"\x5e" + struct.pack(">h", int(v))
        else:
            self.out += b"D" + struct.pack(">d", v)

    def date(self, millis):
        if millis % 60000 == 0 and -(1 << 31) <= millis // 60000 < (1 << 31):
            self.out += b"\x4b" + struct.pack(">i", millis // 60000)
        else:
            self.out += b"\x4a" + struct.pack(">q", millis)

    def string(self, data, chunks=()):
        """A string; ``chunks`` (unit counts) first writes that many non-final 'R' chunks."""
        units = _units_of(data.encode() if isinstance(data, str) else bytes(data))
        for size in chunks:
            size = min(size, len(units))
            self.out += b"R" + size.to_bytes(2, "big") + b"".join(units[:size])
            units = units[size:]
        self.out += encode_string(b"".join(units))

    def utf8_string(self, data):
        """A string of UTF-8 ``data`` as is, 4-byte sequences counted as two units (what some
        non-Java writers send; hessian-lite itself would refuse them)."""
        data = bytes(data)
        n = sum(2 if b >= 0xF0 else 1 for b in data if not 0x80 <= b <= 0xBF)
        if n <= 0x1F:
            self.out.append(n)
        elif n <= 0x3FF:
            self.out += bytes((0x30 + (n >> 8), n & 0xFF))
        else:
            self.out += b"S" + n.to_bytes(2, "big")
        self.out += data

    def binary(self, data, chunks=()):
        data = bytes(data)
        for size in chunks:
            size = min(size, len(data))
            self.out += b"A" + size.to_bytes(2, "big") + data[:size]
            data = data[size:]
        n = len(data)
        if n <= 15:
            self.out.append(0x20 + n)
        elif n <= 0x3FF:
            self.out += bytes((0x34 + (n >> 8), n & 0xFF))
        else:
            self.out += b"B" + n.to_bytes(2, "big")
        self.out += data

    def _type(self, name):
        if name in self.types:
            self.int(self.types.index(name))
        else:
            self.types.append(name)
            self.string(name)

    def list_start(self, length=None, type_name=None):
        """Start a list; the caller writes the items, then ``end()`` if ``length`` is None."""
        self.refs += 1
        if length is None:
            self.out.append(0x55 if type_name is not None else 0x57)
            if type_name is not None:
                self._type(type_name)
        elif type_name is not None:
            if length <= 7:
                self.out.append(0x70 + length)
                self._type(type_name)
            else:
                self.out.append(0x56)
                self._type(type_name)
                self.int(length)
        elif length <= 7:
            self.out.append(0x78 + length)
        else:
            self.out.append(0x58)
            self.int(length)

    def map_start(self, type_name=None):
        """Start a map; the caller writes keys and values, then ``end()``."""
        self.refs += 1
        if type_name is None:
            self.out.append(0x48)
        else:
            self.out.append(0x4D)
            self._type(type_name)

    def end(self):
        self.out.append(_Z)

    def object_start(self, class_name, fields):
        """Start an object (defining its class on first use); the caller writes the fields."""
        self.refs += 1
        key = (class_name, tuple(fields))
        if key not in self.classes:
            self.out.append(0x43)
            self.string(class_name)
            self.int(len(fields))
            for name in fields:
                self.string(name)
            self.classes.append(key)
        index = self.classes.index(key)
        if index <= 15:
            self.out.append(0x60 + index)
        else:
            self.out.append(0x4F)
            self.int(index)

    def ref(self, index):
        self.out.append(0x51)
        self.int(index)
