"""The codecgen intermediate representation (IR).

The frontend (``codecgen.frontend``) lowers a construct tree plus the roles of a
``codecgen.Protocol`` into the frozen dataclasses below.  Every backend (C++,
Python reference, Kubernetes) reads only this module's types: no construct
object and no target-language text lives here.

Shape of the tree::

    ProtocolIR
      frame: Struct                      the whole frame, fields in wire order
        fields: tuple[Field, ...]
          Field(name, path, node)        path is absolute, e.g. ("header", "len")
            node: Int | Bits | Const | Bytes | VarInt | Padding
                  | Struct | Array | Region | If | Switch
      roles: Roles                       request id, message type, keys, ...

Expressions (``Expr``) are a tiny AST over *earlier* fields: ``Lit``, ``Ref``
(a scalar field by absolute path), ``LenOf`` (byte length of a bytes field or
element count of an array), ``BinOp`` and ``UnOp``.  Decoding semantics, shared
by every engine, are documented in ``docs``-style comments on each node.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

Path = Tuple[str, ...]


# Keys meta-protocol-proxy reserves for itself (ReservedHeaders in codec.h): codecs never
# publish them (decode) and specs cannot route on them.
RESERVED_KEYS = ("x-request-id", "x-client-trace-id", "x-envoy-force-trace")
RESERVED_PREFIX = "x-meta-protocol-"

# The pseudo-field holding the frame's direction (0 request, 1 response): see spec.DIRECTION.
DIRECTION_PATH: "Path" = ("@direction",)


def dotted(path: Path) -> str:
    return ".".join(path)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Lit:
    value: int


@dataclass(frozen=True)
class Ref:
    """Value of an earlier scalar field (Int, bit field, VarInt)."""

    path: Path


@dataclass(frozen=True)
class LenOf:
    """Byte length of a Bytes field, or element count of an Array."""

    path: Path


BINARY_OPS = ("+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>",
              "==", "!=", "<", "<=", ">", ">=", "and", "or")
UNARY_OPS = ("-", "~", "not")


@dataclass(frozen=True)
class BinOp:
    op: str
    lhs: "Expr"
    rhs: "Expr"


@dataclass(frozen=True)
class UnOp:
    op: str
    operand: "Expr"


Expr = Union[Lit, Ref, LenOf, BinOp, UnOp]


def expr_refs(expr: Expr) -> list[Path]:
    """Paths an expression reads (Ref and LenOf), in order of appearance."""
    if isinstance(expr, (Ref, LenOf)):
        return [expr.path]
    if isinstance(expr, BinOp):
        return expr_refs(expr.lhs) + expr_refs(expr.rhs)
    if isinstance(expr, UnOp):
        return expr_refs(expr.operand)
    return []


def uses_direction(expr: "Expr") -> bool:
    return DIRECTION_PATH in expr_refs(expr)


def expr_text(expr: Expr) -> str:
    """Human-readable form, used by ``codecgen check`` and in comments."""
    if isinstance(expr, Lit):
        return str(expr.value)
    if isinstance(expr, Ref):
        return dotted(expr.path)
    if isinstance(expr, LenOf):
        return f"len({dotted(expr.path)})"
    if isinstance(expr, BinOp):
        return f"({expr_text(expr.lhs)} {expr.op} {expr_text(expr.rhs)})"
    return f"{expr.op}{expr_text(expr.operand)}"


# --------------------------------------------------------------------------- wire nodes


class Endian(str, enum.Enum):
    BIG = "big"
    LITTLE = "little"


@dataclass(frozen=True)
class IntType:
    """A fixed-width integer on the wire."""

    width: int  # bytes: 1, 2, 3, 4, 8
    signed: bool
    endian: Endian

    @property
    def bits(self) -> int:
        return self.width * 8

    @property
    def max_value(self) -> int:
        return (1 << (self.bits - (1 if self.signed else 0))) - 1

    @property
    def min_value(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0


@dataclass(frozen=True)
class Int:
    """An integer field.

    ``derived`` is set for ``Rebuild`` fields: on encode the value is recomputed
    from the expression (lengths after a mutation).  ``enum`` maps names to
    values for ``Enum``; ``flags`` maps names to bit masks for ``FlagsEnum``.
    """

    type: IntType
    derived: Optional[Expr] = None
    enum: Tuple[Tuple[str, int], ...] = ()
    flags: Tuple[Tuple[str, int], ...] = ()


@dataclass(frozen=True)
class BitField:
    name: str
    offset: int  # bit offset from the most significant bit of the group
    width: int  # bits
    is_flag: bool
    enum: Tuple[Tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Bits:
    """A ``BitStruct``: ``width`` whole bytes split into big-endian bit fields."""

    width: int
    fields: Tuple[BitField, ...]


@dataclass(frozen=True)
class Const:
    """Fixed bytes (``Const``).  Decode refuses at the first differing byte."""

    value: bytes


@dataclass(frozen=True)
class Bytes:
    """Raw bytes.

    ``size`` is an expression over earlier fields, or ``None`` for greedy bytes
    (the rest of the enclosing region or frame).  ``prefix`` is set for
    ``PascalString``-like fields whose length is an integer just before them.
    ``encoding`` is informational (strings are carried as bytes by every engine).
    """

    size: Optional[Expr] = None
    prefix: Optional[IntType] = None
    prefix_varint: bool = False
    encoding: Optional[str] = None

    @property
    def greedy(self) -> bool:
        return self.size is None and self.prefix is None and not self.prefix_varint


@dataclass(frozen=True)
class VarInt:
    """Unsigned LEB128 (``construct.VarInt``), at most ``max_bytes`` bytes."""

    max_bytes: int = 10


@dataclass(frozen=True)
class Padding:
    size: int


@dataclass(frozen=True)
class Struct:
    fields: Tuple["Field", ...]


@dataclass(frozen=True)
class Array:
    """``count`` elements of ``element``.

    Either ``count`` is an expression (``Array(this.n, ...)``) or ``prefix`` is
    the integer type of a count written just before the elements
    (``PrefixedArray``).  Counts are bounded by ``max_count`` and by the bytes
    available (every element is at least ``min_element_size`` bytes).
    """

    element: "Node"
    count: Optional[Expr] = None
    prefix: Optional[IntType] = None
    max_count: int = 1024


@dataclass(frozen=True)
class Region:
    """``Prefixed``: a length integer, then exactly that many bytes of ``inner``.

    With ``include_length`` the length counts its own bytes too.
    """

    prefix: IntType
    inner: "Node"
    include_length: bool = False


@dataclass(frozen=True)
class If:
    cond: Expr
    then: "Node"


@dataclass(frozen=True)
class Switch:
    key: Expr
    cases: Tuple[Tuple[int, "Node"], ...]
    default: Optional["Node"] = None


@dataclass(frozen=True)
class ExtOutput:
    """A value an extension reads out of its field: an integer, or text (bytes).

    Roles address it as ``<field path> + (name,)``; the frame's own sizes and conditions
    cannot (it exists only once the whole frame is parsed).
    """

    name: str
    text: bool


@dataclass(frozen=True)
class Extension:
    """A field whose bytes only an extension understands (``codecgen.ext``).

    ``kind`` names the implementation: the Python class ``camel(kind)`` defined by
    ``python_sources`` and the C++ namespace ``camel(kind)`` defined by ``cpp_sources``
    (absolute file paths, in order). The field is bounded: ``size`` is an expression over
    earlier fields, or None for the rest of the enclosing Prefixed region. ``params`` are
    earlier integer fields (or DIRECTION) handed to the extension's parser. ``header_map``:
    the field can be the protocol's header map (entries published, mutations rewrite it);
    ``error_message``: an error reply can put ``error.message`` into it.
    """

    kind: str
    python_sources: Tuple[str, ...]
    cpp_sources: Tuple[str, ...]
    size: Optional[Expr] = None
    params: Tuple[Tuple[str, Expr], ...] = ()
    outputs: Tuple[ExtOutput, ...] = ()
    header_map: bool = False
    error_message: bool = False

    @property
    def greedy(self) -> bool:
        return self.size is None

    def output(self, name: str) -> Optional[ExtOutput]:
        return next((o for o in self.outputs if o.name == name), None)


Node = Union[Int, Bits, Const, Bytes, VarInt, Padding, Struct, Array, Region, If, Switch, Extension]


@dataclass(frozen=True)
class Field:
    name: str
    path: Path
    node: Node
    # Byte offset from the start of the frame when every earlier field has a
    # fixed size and no condition; None otherwise.
    static_offset: Optional[int] = None
    # Size in bytes when fixed; None otherwise.
    static_size: Optional[int] = None


# --------------------------------------------------------------------------- roles


class MessageType(enum.IntEnum):
    """Aeraki's ``MessageType`` (exact values from codec.h)."""

    Request = 0
    Response = 1
    Oneway = 2
    Stream_Init = 3
    Stream_Data = 4
    Stream_Close_One_Way = 5
    Stream_Close_Two_Way = 6
    Heartbeat = 7
    Error = 8


class ErrorType(enum.IntEnum):
    """Aeraki's ``ErrorType`` (exact values from codec.h)."""

    RouteNotFound = 0
    ClusterNotFound = 1
    NoHealthyUpstream = 2
    BadResponse = 3
    Unspecified = 4
    OverLimit = 5


class Render(str, enum.Enum):
    """How a routing key's value becomes the string given to ``putString``."""

    DECIMAL = "decimal"  # integers, enums, flags: decimal digits, '-' for negatives
    NAME = "name"  # enums: the symbolic name (decimal when unknown)
    TEXT = "text"  # bytes/strings: the bytes as they are
    HEX = "hex"  # bytes: lower-case hex


@dataclass(frozen=True)
class TypeRule:
    """``message_type`` is ``type`` when ``when`` is true (first match wins)."""

    when: Expr
    type: MessageType


@dataclass(frozen=True)
class RoutingKey:
    key: str  # lower-case metadata key
    path: Path
    render: Render


@dataclass(frozen=True)
class OperationPart:
    """One piece of the operation name: literal text or a field's value."""

    text: str = ""
    path: Optional[Path] = None
    render: Render = Render.TEXT


@dataclass(frozen=True)
class HeaderMap:
    """A key/value array that mutations rewrite.

    ``array`` is the path of an ``Array`` whose element is a ``Struct`` with the
    two byte fields ``key_field`` and ``value_field``.  Decode publishes every
    entry with ``putString`` (keys lower-cased); encode replaces the value of an
    existing key in place and appends new keys in sorted order.

    ``array`` may instead name an ``Extension`` field with ``header_map``: its
    ``entries`` hook gives the entries, its ``mutate`` hook applies the mutation
    (``key_field`` and ``value_field`` are then empty).
    """

    array: Path
    key_field: str
    value_field: str


@dataclass(frozen=True)
class FixedHeader:
    """A fixed field set by a named mutation key."""

    key: str
    path: Path


class ValueKind(str, enum.Enum):
    LITERAL = "literal"  # an int or bytes constant
    REQUEST_ID = "request_id"  # metadata.getRequestId()
    ERROR_CODE = "error_code"  # mapped from ErrorType
    ERROR_MESSAGE = "error_message"  # error.message
    METADATA = "metadata"  # metadata.getString(key), default if absent/empty


@dataclass(frozen=True)
class Value:
    kind: ValueKind
    literal: Union[int, bytes, None] = None
    codes: Tuple[Tuple[ErrorType, int], ...] = ()  # ERROR_CODE: every ErrorType mapped
    key: str = ""  # METADATA


@dataclass(frozen=True)
class Reply:
    """A frame built from values: every settable leaf field gets one.

    Fields not listed take their default (0, empty bytes, empty arrays, the
    first case of a Switch is never chosen implicitly: the key's value decides).
    Derived fields and region lengths are always computed.
    """

    values: Tuple[Tuple[Path, Value], ...]


@dataclass(frozen=True)
class Roles:
    request_id: Optional[Path]
    message_type_rules: Tuple[TypeRule, ...]  # empty: keep the framework preset
    response_error: Optional[Expr]  # true: ResponseStatus::Error
    routing_keys: Tuple[RoutingKey, ...]
    operation_name: Tuple[OperationPart, ...]
    header_map: Optional[HeaderMap]
    fixed_headers: Tuple[FixedHeader, ...]
    drop_keys: Tuple[str, ...]  # mutation keys never written
    drop_prefixes: Tuple[str, ...]
    body: Optional[Path]  # the body field: body_size is its payload, header_size the rest
    error_reply: Reply
    heartbeat_reply: Optional[Reply]


@dataclass(frozen=True)
class ProtocolIR:
    name: str
    camel: str
    codec_name: str
    frame: Struct
    roles: Roles
    max_frame_size: int
    min_frame_size: int
    spec_file: str = ""
    doc: str = ""

    def field(self, path: Path) -> Field:
        found = find_field(self.frame, path)
        if found is None:
            raise KeyError(dotted(path))
        return found


def iter_fields(node: Node):
    """Every Field below ``node``, depth first, in wire order."""
    if isinstance(node, Struct):
        for f in node.fields:
            yield f
            yield from iter_fields(f.node)
    elif isinstance(node, Array):
        yield from iter_fields(node.element)
    elif isinstance(node, Region):
        yield from iter_fields(node.inner)
    elif isinstance(node, If):
        yield from iter_fields(node.then)
    elif isinstance(node, Switch):
        for _, case in node.cases:
            yield from iter_fields(case)
        if node.default is not None:
            yield from iter_fields(node.default)


def extensions(root: Node) -> list[Field]:
    """Every extension field below ``root``, in wire order."""
    return [f for f in iter_fields(root) if isinstance(f.node, Extension)]


def find_output(root: Node, path: Path) -> Optional[Tuple[Field, ExtOutput]]:
    """The extension field and output that ``path`` (``field path + (output,)``) names."""
    if len(path) < 2:
        return None
    owner = find_field(root, path[:-1])
    if owner is None or not isinstance(owner.node, Extension):
        return None
    output = owner.node.output(path[-1])
    return (owner, output) if output is not None else None


def find_field(root: Node, path: Path) -> Optional[Field]:
    for f in iter_fields(root):
        if f.path == path:
            return f
    return None
