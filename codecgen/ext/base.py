"""Extension fields: wire types the construct DSL cannot express (codecgen's extension API).

An *extension* is a field type implemented twice, once in Python and once in C++, and
declared in a spec like any construct field::

    from codecgen.ext.dubbo import DubboBody

    "body_length" / Rebuild(Int32sb, len_(this.body)),
    "body" / DubboBody(this.body_length, request=this.flag.req, event=this.flag.event, ...),

The field must be *bounded*: either sized by an expression over earlier fields, or
``DubboBody()`` (no size) as the last field of a ``Prefixed`` region. Framing never looks
inside it; both engines call the extension only once the whole frame is present.

Declaring an extension (a subclass of ``ExtensionField``; every class attribute below is
read by the frontend and checked, see ``codecgen.frontend.extension``):

``KIND``            snake_case name, e.g. ``"dubbo_body"``. The Python class must be named
                    ``camel(KIND)`` (``DubboBody``); its C++ code lives in namespace
                    ``camel(KIND)`` inside the protocol's namespace.
``PYTHON_SOURCES``  files, relative to the class's module, embedded in this order into the
                    generated ``python/<name>_codec.py``. They may import only the standard
                    library and construct; an import of an earlier embedded file (or of this
                    module) is written on one line ending in ``# codecgen: embedded`` and is
                    dropped on embedding. ``from __future__`` imports are not allowed.
``CPP_SOURCES``     ``.h``/``.cc`` files, relative to the class's module, copied into
                    ``src/application_protocols/<name>/`` and listed in the BUILD's
                    ``codec_lib``. Two tokens are rewritten on copy: ``CodecgenProtocol``
                    (the protocol's C++ namespace, e.g. ``Dubbo``) and ``codecgen_protocol``
                    (the directory name, for ``#include`` paths), so two protocols can ship
                    the same library in one Envoy binary without clashing symbols. The
                    generated codec includes every ``.h`` in the listed order.
``PARAMS``          names of integer parameters the spec passes as keywords (expressions
                    over earlier fields, or ``DIRECTION``), e.g. ``("request", "event")``.
``OUTPUTS``         ``{name: "int" | "text"}``: values the extension reads out of the field.
                    Roles address them as ``<field>.<name>`` (``this.body.exception`` in a
                    condition, ``"{body.interface}/{body.method}"`` as operation name,
                    ``"body.method"`` as routing key). A text output that is empty is absent
                    (not published). Sizes and conditions of the frame cannot read outputs.
``HEADER_MAP``      True when ``HeaderMap("<field>")`` may name the field: ``entries`` are
                    published with putString (keys lower-cased) and ``mutate`` rewrites them.
``ERROR_MESSAGE``   True when an error reply may set the field to ``ERROR_MESSAGE``
                    (``error_value``). A reply may always set it to literal bytes.

Python hooks (class methods; ``value`` is an ``ExtValue``):

``decode(data: bytes, params: dict) -> ExtValue``      raise ``ExtensionError`` on bad bytes
``entries(value) -> list[(bytes, bytes)]``             (HEADER_MAP) routable key/values
``mutate(value, pairs) -> ExtValue``                   (HEADER_MAP) ``pairs``: sorted
                                                       (key, value) bytes, filtered
``error_value(message: bytes, error_type: int,        (ERROR_MESSAGE) ``error_type``: Aeraki's
    request_id: int) -> ExtValue``                     ErrorType value; ``request_id``: the
                                                       request's (0 with empty metadata)
``random_value(rng, params) -> ExtValue | None``       optional: valid values for
                                                       ``codecgen verify`` (None: redraw)
``sample_value(params, outputs, entries)``             optional: a valid value for the sample
    ``-> ExtValue | None``                             tools (``codecgen serve/call/probe``,
                                                       ``image verify``, e2e) carrying the
                                                       given text outputs ``{name: bytes}``
                                                       (and the request id, an int, when it
                                                       is an output of the field) and header
                                                       ``entries`` [(key, value)]; None: not
                                                       supported (they refuse)

C++ functions (namespace ``camel(KIND)``; fixed signatures, ``Value`` has one public member
per output, ``int64_t`` or ``std::string``, and ``Params`` one ``int64_t`` per parameter)::

    struct Params { int64_t request; ... };
    struct Value { int64_t exception{0}; std::string interface; ...; /* private state */ };
    // The whole frame is in `buffer`; the field is [offset, offset + length). Nothing is
    // consumed: read with peek/copyOut. Throws EnvoyException on bytes that are not valid.
    void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length,
               const Params& params, Value& value);
    // HEADER_MAP:
    void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out);
    // `pairs` sorted by key, filtered as the Python hook's. Returns false when the field's
    // bytes stay as they are; otherwise size() is the new length.
    bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs);
    uint64_t size(const Value& value);
    // `field` holds the original bytes of the field (moved, not copied, out of the frame);
    // append exactly size(value) bytes to `out`, moving what did not change.
    void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out);
    // ERROR_MESSAGE: `error_type` is Aeraki's ErrorType as an integer, `request_id` the
    // metadata's (0 when empty), for extensions that carry the id themselves.
    std::string errorValue(const std::string& message, int64_t error_type, uint64_t request_id);

Both implementations must agree byte for byte and on which inputs are errors:
``codecgen verify`` checks exactly that on random frames (``random_value``), their
truncations and corruptions.
"""

from construct import Construct, SizeofError, evaluate, stream_read, stream_read_entire, stream_write


class ExtensionError(Exception):
    """The bytes of an extension field are not valid (the C++ side throws EnvoyException)."""


class ExtValue:
    """The value of an extension field: the bytes to write, and the extension's outputs.

    ``len(value)`` is the field's size in bytes, so ``Rebuild(..., len_(this.<field>))``
    works. ``value[name]`` reads an output; an empty text output reads as absent (KeyError).
    ``state`` is extension-private (e.g. offsets that ``mutate`` needs).
    """

    __slots__ = ("data", "outputs", "state")

    def __init__(self, data=b"", outputs=None, state=None):
        self.data = bytes(data)
        self.outputs = dict(outputs or {})
        self.state = state

    def __len__(self):
        return len(self.data)

    def __getitem__(self, name):
        value = self.outputs[name]
        if isinstance(value, (bytes, bytearray)) and not value:
            raise KeyError(name)
        return value

    def __eq__(self, other):
        return isinstance(other, ExtValue) and (self.data, self.outputs) == (other.data, other.outputs)

    def __repr__(self):
        return f"ExtValue({self.data!r}, {self.outputs!r})"


class ExtensionField(Construct):
    """Base class of extension field types; see the module docstring for the contract."""

    KIND = ""
    PYTHON_SOURCES = ()
    CPP_SOURCES = ()
    PARAMS = ()
    OUTPUTS = {}
    HEADER_MAP = False
    ERROR_MESSAGE = False

    def __init__(self, size=None, **params):
        super().__init__()
        unknown = sorted(set(params) - set(self.PARAMS))
        missing = sorted(set(self.PARAMS) - set(params))
        if unknown or missing:
            raise TypeError(f"{type(self).__name__}: parameters {list(self.PARAMS)} expected"
                            f"{'; unknown ' + ', '.join(unknown) if unknown else ''}"
                            f"{'; missing ' + ', '.join(missing) if missing else ''}")
        self.size = size
        self.params = params
        self.flagbuildnone = False

    # ------------------------------------------------------------------ construct

    def _params(self, context):
        return {name: int(evaluate(expr, context)) for name, expr in self.params.items()}

    def _parse(self, stream, context, path):
        if self.size is None:
            data = stream_read_entire(stream, path)
        else:
            size = evaluate(self.size, context)
            if size < 0:
                raise ExtensionError(f"negative length {size}")
            data = stream_read(stream, size, path)
        return self.decode(bytes(data), self._params(context))

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, ExtValue):
            obj = self.raw(obj)
        if self.size is not None:
            size = evaluate(self.size, context)
            if size != len(obj.data):
                raise ExtensionError(f"the field is {len(obj.data)} bytes, its size says {size}")
        stream_write(stream, obj.data, len(obj.data), path)
        return obj

    def _sizeof(self, context, path):
        raise SizeofError("an extension field has no static size", path=path)

    # ------------------------------------------------------------------ hooks

    @classmethod
    def raw(cls, data):
        """A value that writes ``data`` as it is (replies with literal bytes); values pass."""
        return data if isinstance(data, ExtValue) else ExtValue(data or b"")

    @classmethod
    def decode(cls, data, params):
        raise NotImplementedError

    @classmethod
    def entries(cls, value):
        return []

    @classmethod
    def mutate(cls, value, pairs):
        return value

    @classmethod
    def error_value(cls, message, error_type, request_id):
        raise NotImplementedError

    @classmethod
    def random_value(cls, rng, params):
        return None

    @classmethod
    def sample_value(cls, params, outputs, entries):
        return None
