"""``BoltHeader``: the header of a SOFA Bolt command, a map of strings.

The region is ``header_len`` bytes (a u16 of the fixed header) holding key/value pairs until
its end, no count::

    ( key length i32 | key bytes | value length i32 | value bytes )*

as written by SOFA RPC's ``SimpleMapSerializer`` (Java) and sofa-bolt-node. A negative length
is a null string (the writers put -1 for a null value); a pair with a null key or value is
dropped, as in the Java reader. A length that runs past the region is an error. Plain construct
could say this with ``GreedyRange``, which codecgen's IR has no node for (the count is where
the region ends, not a prefix): hence an extension.

``entries``: the string pairs; a repeated key keeps its last value (Java's HashMap, Node's
object). Outputs ``service`` (the ``service`` key, else ``sofa_head_target_service``) and
``method`` (``sofa_head_method_name``) for the operation name. ``mutate`` appends the pairs
whose value differs at the end of the region (a key matching existing keys case-insensitively
is written with each existing spelling); readers keep the last value, so appending also
replaces. Nothing changes when nothing differs or when the header would pass 65535 bytes (its
length is a u16).
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # codecgen: embedded

MAX_HEADER = 0xFFFF
SERVICE_KEYS = (b"service", b"sofa_head_target_service")
METHOD_KEY = b"sofa_head_method_name"


def _lower(data):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in data)


def _string(data):
    return len(data).to_bytes(4, "big") + data


def encode_pairs(pairs):
    """The wire form of ``pairs`` [(key, value) bytes]."""
    return b"".join(_string(key) + _string(value) for key, value in pairs)


def _latest(pairs):
    """Each key once with its last value, ordered by where that value is."""
    latest = {}
    for key, value in pairs:
        latest.pop(key, None)
        latest[key] = value
    return latest


class BoltHeader(ExtensionField):
    KIND = "bolt_header"
    PYTHON_SOURCES = ("bolt_header.py",)
    CPP_SOURCES = ("bolt_header.h", "bolt_header.cc")
    OUTPUTS = {"service": "text", "method": "text"}
    HEADER_MAP = True

    @classmethod
    def decode(cls, data, params):
        pos, n, pairs = 0, len(data), []
        while pos < n:
            strings = []
            for what in ("key", "value"):
                if n - pos < 4:
                    raise ExtensionError(f"the {what} length runs past the end of the header")
                size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
                pos += 4
                if size < 0:
                    strings.append(None)
                    continue
                if size > n - pos:
                    raise ExtensionError(f"a {what} of {size} bytes runs past the end of the header")
                strings.append(data[pos:pos + size])
                pos += size
            if strings[0] is not None and strings[1] is not None:
                pairs.append((strings[0], strings[1]))
        latest = _latest(pairs)
        service = latest.get(SERVICE_KEYS[0]) or latest.get(SERVICE_KEYS[1], b"")
        return ExtValue(data, {"service": service, "method": latest.get(METHOD_KEY, b"")}, pairs)

    @classmethod
    def entries(cls, value):
        return list(_latest(value.state).items()) if value.state is not None else []

    @classmethod
    def mutate(cls, value, pairs):
        if value.state is None:
            return value
        latest = _latest(value.state)
        block = []
        for key, text in pairs:
            spellings = [k for k in latest if _lower(k) == _lower(key)] or [key]
            block += [(spelling, text) for spelling in spellings if latest.get(spelling) != text]
        data = value.data + encode_pairs(block)
        if not block or len(data) > MAX_HEADER:
            return value
        return cls.decode(data, {})

    @classmethod
    def sample_value(cls, params, outputs, entries):
        """``entries``, then the outputs as ``service`` and ``sofa_head_method_name``."""
        pairs = list(entries)
        if outputs.get("service"):
            pairs.append((SERVICE_KEYS[0], outputs["service"]))
        if outputs.get("method"):
            pairs.append((METHOD_KEY, outputs["method"]))
        return cls.decode(encode_pairs(pairs), params)

    @classmethod
    def random_value(cls, rng, params):
        data = bytearray()
        for _ in range(rng.choice([0, 1, 2, 3, 5])):
            for what in ("key", "value"):
                if rng.random() < 0.08:
                    data += (-1).to_bytes(4, "big", signed=True)  # null
                else:
                    text = rng.choice(_KEYS) if what == "key" else _random_text(rng)
                    data += _string(text)
        return cls.decode(bytes(data), params)


_KEYS = [b"service", b"sofa_head_method_name", b"sofa_head_target_service", b"rpc_trace_context.sofaTraceId",
         b"x-tenant", b"X-Tenant", b"", "cl\u00e9".encode()]


def _random_text(rng):
    if rng.random() < 0.8:
        return rng.choice([b"", b"com.example.EchoService:1.0", b"echo", b"canary", "\u00e9t\u00e9".encode(),
                           b"a" * 130, b"\x00\x01"])
    return bytes(rng.choice(b"abcXYZ09-._:") for _ in range(rng.randint(0, 40)))
