"""``DubboBody``: the body of a Dubbo 2 frame, Hessian 2 serialized (an extension field).

Parameters (from the 16-byte header): ``request`` (the 0x80 flag), ``event`` (0x20),
``status`` (byte 3) and ``serialization`` (the low 5 flag bits; only 2, Hessian 2, is read).

What the body holds, by frame kind (wire-formats §1.4-1.6):

- event (heartbeat, READONLY): one value, normally ``N``;
- request: dubbo version, service path, service version (or ``N``), method, parameter
  descriptor, one value per parameter in the descriptor (skipped), attachments (``H``/``M``
  map, or ``N``);
- response with status 20: a result flag 0-5, the exception or value it announces, and for
  flags 3-5 the attachments map;
- response with any other status: one string (or ``N``), the error message.

The body must end with its last value: trailing bytes are an error.

Outputs: ``interface`` and ``method`` (requests), ``exception`` (1 for a response whose result
flag is 0 or 3: a business exception). ``entries`` are the attachments whose key and value are
strings. ``mutate`` appends each (key, value) before the attachments map's final ``Z``: Java's
HashMap keeps the last of duplicate keys, so appending also replaces. A key that matches
existing keys case-insensitively is written with each existing spelling instead, so the
application sees the new value under the name it uses. ``N`` attachments become a map; frames
without an attachments section (events, responses with flags 0-2 that old clients expect,
error responses) are left as they are. ``error_value`` is the message as one Hessian string,
the body of a Dubbo error response (status other than 20).
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # codecgen: embedded
from codecgen.ext.hessian2.hessian2 import Hessian2Error, Reader, Writer, encode_string  # codecgen: embedded

HESSIAN2 = 2
STATUS_OK = 20
_PRIMITIVES = b"ZBCSIJFD"


def parameter_count(descriptor):
    """The number of parameters in a JVM descriptor such as ``Ljava/lang/String;I[J``."""
    count, i, n = 0, 0, len(descriptor)
    while i < n:
        while descriptor[i] == 0x5B:  # '['
            i += 1
            if i == n:
                raise ExtensionError("parameter descriptor ends inside an array type")
        code = descriptor[i]
        if code == 0x4C:  # 'L'
            end = descriptor.find(b";", i)
            if end < 0:
                raise ExtensionError("parameter descriptor: class name without ';'")
            i = end
        elif code not in _PRIMITIVES:
            raise ExtensionError(f"parameter descriptor: unexpected {chr(code)!r}")
        i += 1
        count += 1
    return count


def _lower(data):
    return bytes(b + 32 if 0x41 <= b <= 0x5A else b for b in data)


class DubboBody(ExtensionField):
    KIND = "dubbo_body"
    PYTHON_SOURCES = ("../hessian2/hessian2.py", "dubbo_body.py")
    CPP_SOURCES = ("../hessian2/hessian2.h", "../hessian2/hessian2.cc", "dubbo_body.h", "dubbo_body.cc")
    PARAMS = ("request", "event", "status", "serialization")
    OUTPUTS = {"interface": "text", "method": "text", "exception": "int"}
    HEADER_MAP = True
    ERROR_MESSAGE = True

    # state: (attachments kind: None | "map" | "null", offset of the map's 'Z' or of the 'N',
    #         string pairs, string keys)

    @classmethod
    def decode(cls, data, params):
        if params["serialization"] != HESSIAN2:
            raise ExtensionError(f"serialization id {params['serialization']} is not Hessian 2")
        r = Reader(data)
        outputs = {"interface": b"", "method": b"", "exception": 0}
        kind, at, pairs, keys = None, 0, [], []
        try:
            if params["event"]:
                r.skip_value()
            elif params["request"]:
                r.read_string()  # dubbo protocol version
                outputs["interface"] = r.read_string()
                r.read_string_or_null()  # service version
                outputs["method"] = r.read_string()
                for _ in range(parameter_count(r.read_string())):
                    r.skip_value()
                kind, at, pairs, keys = cls._attachments(r)
            elif params["status"] == STATUS_OK:
                flag = r.read_int()
                if not 0 <= flag <= 5:
                    raise ExtensionError(f"unknown result flag {flag}")
                if flag in (0, 1, 3, 4):
                    r.skip_value()
                outputs["exception"] = int(flag in (0, 3))
                if flag >= 3:
                    kind, at, pairs, keys = cls._attachments(r)
            else:
                r.read_string_or_null()  # the error message
        except Hessian2Error as exc:
            raise ExtensionError(str(exc)) from None
        if r.pos != len(data):
            raise ExtensionError(f"{len(data) - r.pos} bytes after the body's last value")
        return ExtValue(data, outputs, (kind, at, pairs, keys))

    @staticmethod
    def _attachments(r):
        if r.peek() == 0x4E:  # N: no attachments
            at = r.pos
            r.byte()
            return "null", at, [], []
        pairs, keys, at = r.read_string_map()
        return "map", at, pairs, keys

    @classmethod
    def entries(cls, value):
        return list(value.state[2]) if value.state else []

    @classmethod
    def mutate(cls, value, pairs):
        kind, at, _, keys = value.state
        if kind is None or not pairs:
            return value
        inserted = b""
        for key, text in pairs:
            spellings = []
            for existing in keys:
                if _lower(existing) == _lower(key) and existing not in spellings:
                    spellings.append(existing)
            for spelling in spellings or [key]:
                inserted += encode_string(spelling) + encode_string(text)
        data = value.data
        if kind == "map":
            data = data[:at] + inserted + data[at:]
        else:
            data = data[:at] + b"H" + inserted + b"Z" + data[at + 1:]
        return ExtValue(data, value.outputs, None)

    @classmethod
    def error_value(cls, message, error_type, request_id):
        return ExtValue(encode_string(message))

    @classmethod
    def sample_value(cls, params, outputs, entries):
        """For the sample tools: a request calling ``interface``/``method`` (the outputs) with no
        arguments, or an OK response whose result is the string "ok"; either carries
        ``entries`` as its attachments (a response with result flag 4, value and attachments)."""
        if params["serialization"] != HESSIAN2:
            return None
        if params["event"]:
            return cls.decode(b"N", params)  # a heartbeat's body, as Dubbo writes it
        w = Writer()
        if params["request"]:
            w.string(b"2.0.2")
            w.string(outputs.get("interface") or b"org.example.Sample")
            w.null()  # no service version
            w.string(outputs.get("method") or b"call")
            w.string(b"")  # no parameters
        elif params["status"] == STATUS_OK:
            w.int(4)  # RESPONSE_VALUE_WITH_ATTACHMENTS
            w.string(b"ok")
        else:
            return None
        w.map_start()
        for key, value in entries:
            w.string(key)
            w.string(value)
        w.end()
        return cls.decode(w.getvalue(), params)

    # ------------------------------------------------------------------ random bodies

    @classmethod
    def random_value(cls, rng, params):
        if params["serialization"] != HESSIAN2:
            return None
        # Favour requests and OK responses, which carry interfaces and attachments: redraw
        # most events and error responses.
        if (params["event"] or (not params["request"] and params["status"] != STATUS_OK)) and rng.random() < 0.7:
            return None
        w = Writer()
        if params["event"]:
            if rng.random() < 0.8:
                w.null()
            else:
                w.string(rng.choice([b"R", b"W"]))
        elif params["request"]:
            w.string(rng.choice([b"2.0.2", b"2.7.8", b"2.4.10"]))
            w.string(rng.choice(_INTERFACES))
            if rng.random() < 0.2:
                w.null()
            else:
                w.string(rng.choice([b"0.0.0", b"1.0.0", b""]))
            w.string(rng.choice(_METHODS))
            args = [rng.choice(_ARGUMENTS) for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5]))]
            w.string(b"".join(descriptor for descriptor, _ in args))
            for _, write in args:
                write(w, rng, 0)
            _random_attachments(w, rng)
        elif params["status"] == STATUS_OK:
            flag = rng.randrange(6)
            w.int(flag)
            if flag in (0, 3):
                _random_exception(w, rng)
            elif flag in (1, 4):
                rng.choice(_ARGUMENTS)[1](w, rng, 0)
            if flag >= 3:
                _random_attachments(w, rng)
        elif rng.random() < 0.9:
            w.string(rng.choice([b"Service not found", b"", "\u00fcber failure \U0001F600".encode(), b"x" * 40]))
        else:
            w.null()
        return cls.decode(w.getvalue(), params)


# ---------------------------------------------------------------------------- random values

_INTERFACES = [b"org.apache.dubbo.demo.DemoService", b"com.example.UserService", b"",
               "com.\u4f8b\u3048.\u30b5\u30fc\u30d3\u30b9".encode(), b"a" * 40]
_METHODS = [b"sayHello", b"$invoke", b"$echo", b"get", "m\u00e9thode".encode()]
_TEXT = [b"", b"world", b"x-request-id", "\u00e9t\u00e9".encode(), "\U0001F600 emoji".encode(),
         b"a" * 33, b"Z", b"H"]


def _random_text(rng):
    return rng.choice(_TEXT) if rng.random() < 0.8 else bytes(rng.choice(b"abcXYZ09-._") for _ in range(rng.randint(0, 40)))


def _write_string(w, rng, depth):
    text = _random_text(rng)
    if rng.random() < 0.1:
        w.utf8_string(text)  # 4-byte sequences as they are, as non-Java writers send them
        return
    chunks = [rng.randint(0, 4) for _ in range(rng.choice([0, 0, 0, 1, 2]))]
    w.string(text, chunks)


def _write_int(w, rng, depth):
    w.int(rng.choice([0, 1, -16, 47, 48, -2048, 2047, 262143, -262144, 1 << 30, -(1 << 31)]))


def _write_long(w, rng, depth):
    w.long(rng.choice([0, -8, 15, 2047, -262144, 1 << 31, -(1 << 40), (1 << 63) - 1]))


def _write_double(w, rng, depth):
    w.double(rng.choice([0.0, 1.0, -128.0, 32767.0, 3.25, -1e300]))


def _write_bool(w, rng, depth):
    w.bool(rng.random() < 0.5)


def _write_binary(w, rng, depth):
    data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 15, 16, 40])))
    w.binary(data, [rng.randint(0, 5) for _ in range(rng.choice([0, 0, 1, 2]))])


def _write_date(w, rng, depth):
    w.date(rng.choice([0, 60000 * 28000000, 1700000000123]))


def _write_list(w, rng, depth):
    items = [rng.choice(_LEAVES) for _ in range(rng.choice([0, 1, 2, 8]))]
    typed = rng.random() < 0.5
    fixed = rng.random() < 0.7
    w.list_start(len(items) if fixed else None, rng.choice(["[string", "java.util.List"]) if typed else None)
    for write in items:
        write(w, rng, depth + 1) if depth < 3 else _write_int(w, rng, depth + 1)
    if not fixed:
        w.end()


def _write_map(w, rng, depth):
    w.map_start(rng.choice([None, "java.util.TreeMap"]))
    for _ in range(rng.choice([0, 1, 3])):
        _write_string(w, rng, depth + 1)
        rng.choice(_LEAVES)(w, rng, depth + 1) if depth < 3 else _write_int(w, rng, depth + 1)
    w.end()


def _write_object(w, rng, depth):
    name, fields = rng.choice([("com.example.User", ("name", "age")), ("com.example.Empty", ()),
                               ("com.example.Node", ("value", "next", "tags"))])
    w.object_start(name, fields)
    for _ in fields:
        writer = rng.choice(_LEAVES + ([_write_object, _write_list] if depth < 3 else []))
        writer(w, rng, depth + 1)


def _write_ref(w, rng, depth):
    if w.refs:
        w.ref(rng.randrange(w.refs))
    else:
        w.null()


def _write_null(w, rng, depth):
    w.null()


_LEAVES = [_write_string, _write_int, _write_long, _write_double, _write_bool, _write_binary,
           _write_date, _write_null, _write_ref]
_ARGUMENTS = [
    (b"Ljava/lang/String;", _write_string), (b"I", _write_int), (b"J", _write_long),
    (b"D", _write_double), (b"Z", _write_bool), (b"[B", _write_binary), (b"Ljava/util/Date;", _write_date),
    (b"Ljava/util/List;", _write_list), (b"Ljava/util/Map;", _write_map),
    (b"Lcom/example/User;", _write_object), (b"[Ljava/lang/Object;", _write_list),
    (b"Ljava/lang/Object;", _write_ref),
]


def _random_exception(w, rng):
    w.object_start("java.lang.RuntimeException", ("detailMessage", "cause", "stackTrace"))
    _write_string(w, rng, 1)
    w.ref(0)  # cause: itself, as Java writes it
    w.list_start(1, "[java.lang.StackTraceElement")
    w.object_start("java.lang.StackTraceElement", ("declaringClass", "methodName", "fileName", "lineNumber"))
    w.string(b"com.example.Impl")
    w.string(b"run")
    w.null()
    w.int(42)


def _write_key(w, rng, key):
    if rng.random() < 0.1:
        w.utf8_string(key + "\U0001F511".encode())
    else:
        w.string(key)


def _random_attachments(w, rng):
    if rng.random() < 0.1:
        w.null()
        return
    w.map_start(rng.choice([None, None, None, "java.util.HashMap"]))
    keys = [b"path", b"interface", b"version", b"group", b"timeout", b"X-Trace", b"x-trace", b"remote.application"]
    for _ in range(rng.choice([0, 1, 2, 4, 6])):
        if rng.random() < 0.9:
            _write_key(w, rng, rng.choice(keys))
        else:
            _write_int(w, rng, 1)
        if rng.random() < 0.8:
            _write_string(w, rng, 1)
        else:
            rng.choice(_LEAVES)(w, rng, 1)
    w.end()
