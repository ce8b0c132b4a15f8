"""Frontend goldens: what lowers (and how ``codecgen check`` shows it), and every refusal.

Two tables, one test per row (Kaitai's ``formats_err`` idea, kept inline):

* ``SUPPORTED``: a construct field -> the line ``summarize`` prints for it.
* ``REFUSED``: a spec -> the exact one-line ``SpecError`` it must produce,
  ``<proto>: <dotted path>: <reason>``, naming the construct or the role.

A kitchen-sink frame with every supported construct at once must also lower
and round-trip through the generated reference codec.
"""

from __future__ import annotations

import random
import re

import pytest
from construct import (Array, BitsInteger, BitStruct, Bytes, BytesInteger, Bytewise, Const, CString, Enum,
                       ExprAdapter, Flag, FlagsEnum, Float32b, FormatField, GreedyBytes, GreedyString, Hex,
                       If, IfThenElse, Int8sb, Int8ub, Int16sb, Int16sl, Int16ub, Int16ul, Int32sb, Int32sl,
                       Int32ub, Int32ul, Int64sb, Int64sl, Int64ub, Int64ul, Padded, Padding, PascalString,
                       Prefixed, PrefixedArray, Rebuild, Sequence, Struct, Switch, VarInt, len_, this)
from construct.core import ExplicitError

from codecgen import BoundedVarInt, ir
from codecgen.backends import python as pyb
from codecgen.errors import SpecError
from codecgen.frontend import lower
from codecgen.spec import (DIRECTION, ERROR_MESSAGE, REQUEST, REQUEST_ID, RESPONSE, ErrorCode, HeaderMap,
                           Heartbeat, Key, Protocol, Render, When)
from codecgen.summary import summarize
from codecgen.verify.values import random_frame


def proto(frame, name="demo", **roles) -> Protocol:
    return Protocol(name=name, frame=frame, **roles)


def summary_of(*fields) -> str:
    return summarize(lower(proto(Struct(*fields))))


# --------------------------------------------------------------------------- supported constructs

_INTS = [
    (Int8ub, "u8"), (Int8sb, "i8"),
    (Int16ub, "u16be"), (Int16sb, "i16be"), (Int16ul, "u16le"), (Int16sl, "i16le"),
    (Int32ub, "u32be"), (Int32sb, "i32be"), (Int32ul, "u32le"), (Int32sl, "i32le"),
    (Int64ub, "u64be"), (Int64sb, "i64be"), (Int64ul, "u64le"), (Int64sl, "i64le"),
]

# (id, fields of the frame, regex that one summary line must match in full)
SUPPORTED = [
    *[(f"int-{text}", ["x" / con], rf"x +@0 +{con.sizeof()}B  {text}") for con, text in _INTS],
    ("bytesinteger-3", ["x" / BytesInteger(3)], r"x +@0 +3B  u24be"),
    ("bytesinteger-3-signed-little", ["x" / BytesInteger(3, signed=True, swapped=True)], r"x +@0 +3B  i24le"),
    ("const-bytes", ["magic" / Const(b"\xca\xfe")], r"magic +@0 +2B  const 0xcafe"),
    ("const-int", ["version" / Const(7, Int16ub)], r"version +@0 +2B  const 0x0007"),
    ("bytes-fixed", ["tag" / Bytes(4)], r"tag +@0 +4B  bytes\[4\]"),
    ("bytes-expr", ["n" / Int8ub, "blob" / Bytes(this.n * 2 + 1)], r"blob +@1 +var  bytes\[\(\(n \* 2\) \+ 1\)\]"),
    ("enum", ["kind" / Enum(Int8ub, ping=1, call=2)], r"kind +@0 +1B  u8 enum\{ping=1, call=2\}"),
    ("flagsenum", ["opts" / FlagsEnum(Int16ub, fast=1, safe=0x10)], r"opts +@0 +2B  u16be flags\{fast=0x1, safe=0x10\}"),
    ("bitstruct", ["bits" / BitStruct("prio" / BitsInteger(3), "urgent" / Flag, Padding(4))],
     r"bits +@0 +1B  bits\[8\] prio:3 urgent:flag"),
    ("bitstruct-2-bytes", ["bits" / BitStruct("a" / BitsInteger(12), "b" / BitsInteger(4))],
     r"bits +@0 +2B  bits\[16\] a:12 b:4"),
    ("bitstruct-enum", ["bits" / BitStruct("op" / Enum(BitsInteger(4), get=1), Padding(4))],
     r"bits +@0 +1B  bits\[8\] op:4"),
    ("pascalstring", ["name" / PascalString(Int16ub, "utf8")], r"name +@0 +var  string with u16 length"),
    ("prefixed-bytes", ["token" / Prefixed(Int32ul, GreedyBytes)], r"token +@0 +var  bytes with u32 length"),
    ("prefixed-varint-bytes", ["token" / Prefixed(VarInt, GreedyBytes)], r"token +@0 +var  bytes with varint length"),
    ("prefixed-region", ["region" / Prefixed(Int16ub, Struct("a" / Int8ub))],
     r"region +@0 +var  region with u16 length"),
    ("prefixed-region-includelength", ["region" / Prefixed(Int16ub, Struct("a" / Int8ub), includelength=True)],
     r"region +@0 +var  region with u16 length \(counts itself\)"),
    ("greedybytes-last-in-region", ["region" / Prefixed(Int16ub, Struct("a" / Int8ub, "rest" / GreedyBytes))],
     r" +rest +@\? +var  bytes to the end of the region"),
    ("prefixedarray", ["pairs" / PrefixedArray(Int8ub, Struct("k" / Int8ub))], r"pairs +@0 +var  array\[u8 count, max 1024\]"),
    ("array-expr", ["count" / Int8ub, "nums" / Array(this.count, Int16ub)], r"nums +@1 +var  array\[count, max 1024\]"),
    ("array-fixed", ["nums" / Array(3, Int16ub)], r"nums +@0 +6B  array\[3, max 1024\]"),
    ("rebuild-len", ["length" / Rebuild(Int32ub, len_(this.body) + 2), "body" / Bytes(this.length - 2)],
     r"length +@0 +4B  u32be = \(len\(body\) \+ 2\) \(derived\)"),
    ("rebuild-count", ["count" / Rebuild(Int8ub, len_(this.items)), "items" / Array(this.count, Int8ub)],
     r"count +@0 +1B  u8 = len\(items\) \(derived\)"),
    ("if", ["kind" / Int8ub, "extra" / If(this.kind == 1, Int32ub)], r"extra +@1 +var  if \(kind == 1\)"),
    ("if-enum-name", ["kind" / Enum(Int8ub, ping=1, call=2), "extra" / If(this.kind == "call", Int32ub)],
     r"extra +@1 +var  if \(kind == 2\)"),
    ("if-flag", ["opts" / FlagsEnum(Int8ub, fast=4), "extra" / If(this.opts.fast, Int8ub)],
     r"extra +@1 +var  if \(\(opts & 4\) != 0\)"),
    ("switch", ["kind" / Int8ub, "choice" / Switch(this.kind, {1: Struct("one" / Int16ub),
                                                               2: Struct("two" / Int8ub)})],
     r"choice +@1 +var  switch kind cases \[1, 2\]"),
    ("switch-enum-names", ["kind" / Enum(Int8ub, a=1, b=2),
                           "choice" / Switch(this.kind, {"a": Struct("x" / Int8ub)}, default=Struct())],
     r"choice +@1 +var  switch kind cases \[1\]"),
    ("switch-direction", ["head" / Switch(DIRECTION, {REQUEST: Struct("a" / Int8ub), RESPONSE: Struct("b" / Int8ub)})],
     r"head +@0 +1B  switch @direction cases \[0, 1\]"),
    ("if-direction", ["extra" / If(DIRECTION == RESPONSE, Int8ub)], r"extra +@0 +var  if \(@direction == 1\)"),
    ("padding", ["pad" / Padding(3)], r"pad +@0 +3B  padding 3"),
    ("varint", ["big" / VarInt], r"big +@0 +var  varint"),
    ("bounded-varint", ["vbi" / BoundedVarInt(4)], r"vbi +@0 +var  varint of at most 4 bytes"),
    ("nested-struct", ["outer" / Struct("inner" / Int8ub)], r" +inner +@0 +1B  u8"),
]


@pytest.mark.parametrize("fields,line", [pytest.param(f, l, id=i) for i, f, l in SUPPORTED])
def test_supported_construct_lowers_and_shows(fields, line):
    text = summary_of(*fields)
    frame_lines = text.split("roles:")[0].splitlines()
    assert any(re.fullmatch(r"\s*" + line, row) for row in frame_lines), f"no line {line!r} in:\n{text}"


def kitchen_sink() -> Struct:
    """Every supported construct at once (construct's test_compiler ``example`` idea)."""
    return Struct(
        "magic" / Const(b"KS"),
        "version" / Const(2, Int8ub),
        *[f"i{i}" / con for i, (con, _) in enumerate(_INTS)],
        "u24" / BytesInteger(3), "s24l" / BytesInteger(3, signed=True, swapped=True),
        "kind" / Enum(Int8ub, ping=1, call=2),
        "opts" / FlagsEnum(Int8ub, fast=1, safe=4),
        "bits" / BitStruct("prio" / BitsInteger(3), "urgent" / Flag, Padding(4)),
        "big" / VarInt,
        "pad" / Padding(2),
        "tag" / Bytes(4),
        "n" / Int8ub,
        "blob" / Bytes(this.n * 2 + 1),
        "name" / PascalString(Int8ub, "utf8"),
        "token" / Prefixed(Int16ub, GreedyBytes),
        "count" / Int8ub,
        "nums" / Array(this.count, Int16ub),
        "pairs" / PrefixedArray(Int8ub, Struct("k" / PascalString(Int8ub, "utf8"), "v" / Int32ub)),
        "extra" / If(this.kind == "call", Int32ub),
        "fast" / If(this.opts.fast, Int8ub),
        "choice" / Switch(this.i0, {1: Struct("one" / Int16ub), 2: Struct("two" / PascalString(Int8ub, "utf8"))}),
        "region" / Prefixed(Int16ub, Struct("flag" / Int8ub, "rest" / GreedyBytes)),
        "length" / Rebuild(Int32ub, len_(this.body) + 2),
        "body" / Bytes(this.length - 2),
    )


def test_kitchen_sink_lowers_and_round_trips_in_the_reference_codec():
    p = lower(proto(kitchen_sink(), name="kitchen", request_id="i6", routing_keys={"kind": "kind"}))
    assert [f.name for f in p.frame.fields][:3] == ["magic", "version", "i0"]
    assert p.field(("length",)).node.derived == ir.BinOp("+", ir.LenOf(("body",)), ir.Lit(2))
    assert p.min_frame_size == p.field(("big",)).static_offset, "fixed prefix ends at the VarInt"
    module = pyb.load(p)
    rng = random.Random(0)
    for _ in range(30):
        frame = random_frame(p, module, rng)
        buf = bytearray(frame)
        md = module.Codec().decode(buf)
        assert md.frame == frame and not buf
        assert module.FRAME_COMPILED.build(module.FRAME_COMPILED.parse(frame)) == frame


def test_summary_shows_roles():
    p = lower(proto(Struct("id" / Int32ub, "kind" / Enum(Int8ub, ping=1), "m" / PascalString(Int8ub, "utf8"),
                           "n" / Rebuild(Int32ub, len_(this.body)), "body" / Bytes(this.n)),
                    request_id="id", routing_keys={"method": "m", "kind": "kind"},
                    message_type=[When(this.kind == "ping", ir.MessageType.Heartbeat)],
                    operation_name="svc/{m}", error_reply={"id": REQUEST_ID, "kind": ErrorCode(default=1)}))
    text = summarize(p)
    for line in ("  request id      id", "  routing key     method = m (text)", "  routing key     kind = kind (name)",
                 "  operation name  svc/{m}", "  body            body",
                 "  message type    Heartbeat  when (kind == 1)"):
        assert line in text.splitlines(), f"{line!r} missing from:\n{text}"


# --------------------------------------------------------------------------- refusals

GOOD = Struct(
    "id" / Int32ub,
    "kind" / Int8ub,
    "n" / Rebuild(Int32ub, len_(this.body)),
    "method" / PascalString(Int8ub, "utf8"),
    "body" / Bytes(this.n),
)
HM = Struct("h" / PrefixedArray(Int8ub, Struct("key" / PascalString(Int8ub, "utf8"),
                                                "value" / PascalString(Int8ub, "utf8"))))
SUPPORTED_LIST = (r"\(supported: Struct, Const, Int\*, Bytes, Enum, FlagsEnum, BitStruct, PascalString, "
                  r"Prefixed, PrefixedArray, Array, Rebuild, If, Switch, Padding, VarInt, BoundedVarInt, ZigZag, GreedyBytes\)")

# (id, spec, regex the whole message must match)
REFUSED = [
    # ---- constructs
    ("lambda-size", proto(Struct("n" / Int8ub, "body" / Bytes(lambda ctx: 3))),
     r"demo: frame\.body: size is a Python lambda; use this\.<field> arithmetic"),
    ("lambda-in-region", proto(Struct("r" / Prefixed(Int8ub, Struct("x" / Bytes(lambda c: 1))))),
     r"demo: frame\.r\.x: size is a Python lambda; use this\.<field> arithmetic"),
    ("lambda-condition", proto(Struct("a" / Int8ub, "b" / If(lambda c: c.a, Int8ub))),
     r"demo: frame\.b: condition is a Python lambda; use this\.<field> arithmetic"),
    ("lambda-switch-key", proto(Struct("a" / Int8ub, "b" / Switch(lambda c: c.a, {1: Struct("x" / Int8ub)}))),
     r"demo: frame\.b: Switch key is a Python lambda; use this\.<field> arithmetic"),
    ("expradapter", proto(Struct("a" / ExprAdapter(Int8ub, lambda o, c: o, lambda o, c: o))),
     r"demo: frame\.a: ExprAdapter is not supported by codecgen " + SUPPORTED_LIST),
    ("adapter", proto(Struct("a" / Hex(Int8ub))), r"demo: frame\.a: Hex is not supported by codecgen .*"),
    ("sequence", proto(Struct("a" / Sequence(Int8ub, Int8ub))), r"demo: frame\.a: Sequence is not supported by codecgen .*"),
    ("cstring", proto(Struct("a" / CString("utf8"))),
     r"demo: frame\.a: only PascalString and GreedyString are supported among strings \(this one wraps NullTerminated\)"),
    ("cstring-in-array-in-region",
     proto(Struct("h" / Prefixed(Int16ub, Struct("hs" / PrefixedArray(Int8ub, Struct("key" / CString("utf8"))))))),
     r"demo: frame\.h\.hs\.key: only PascalString and GreedyString are supported among strings .*"),
    ("float", proto(Struct("a" / Float32b)), r"demo: frame\.a: FormatField '>f' is not an integer; only integers are supported"),
    ("native-order", proto(Struct("a" / FormatField("=", "H"))),
     r"demo: frame\.a: FormatField '=H' uses native byte order; say big or little"),
    ("bytesinteger-9", proto(Struct("a" / BytesInteger(9))), r"demo: frame\.a: BytesInteger of 9 bytes is not supported \(1\.\.8\)"),
    ("padded", proto(Struct("a" / Padded(4, Int8ub))), r"demo: frame\.a: Padded is supported only as Padding\(n\)"),
    ("empty-const", proto(Struct("a" / Const(b""))), r"demo: frame\.a: empty Const"),
    ("rebuild-bytes", proto(Struct("a" / Rebuild(Bytes(2), b"ab"))), r"demo: frame\.a: Rebuild is supported on integer fields only"),
    ("array-discard", proto(Struct("n" / Int8ub, "b" / Array(this.n, Int8ub, discard=True))),
     r"demo: frame\.b: Array\(discard=True\) is not supported"),
    ("prefixed-varint-region", proto(Struct("a" / Prefixed(VarInt, Struct("x" / Int8ub)))),
     r"demo: frame\.a: Prefixed with a VarInt length is supported only around GreedyBytes"),
    ("bits-signed", proto(Struct("b" / BitStruct("x" / BitsInteger(8, signed=True)))),
     r"demo: frame\.b\.x: BitsInteger must be unsigned, big-endian, fixed width"),
    ("bits-not-whole-bytes", proto(Struct("b" / BitStruct("x" / BitsInteger(3)))),
     r"demo: frame\.b: BitStruct bits add up to 3, not a whole number of bytes"),
    ("bits-bytewise", proto(Struct("b" / BitStruct("x" / Bytewise(Int8ub)))),
     r"demo: frame\.b\.x: Transformed inside a BitStruct is not supported"),
    ("frame-not-struct", proto(Int8ub), r"demo: frame: the frame must be a construct Struct, got FormatField"),
    # ---- sizes and expressions
    ("size-later-field", proto(Struct("a" / Bytes(this.n), "n" / Int8ub)),
     r"demo: frame\.a: size refers to 'n', which is not an earlier field \(sizes may depend on earlier fields only\)"),
    ("size-later-parent-field", proto(Struct("s" / Struct("a" / Bytes(this._.n)), "n" / Int8ub)),
     r"demo: frame\.s\.a: size refers to 'n', which is not an earlier field .*"),
    ("size-missing-field", proto(Struct("b" / Bytes(this.missing))), r"demo: frame\.b: size refers to 'missing', .*"),
    ("size-from-bytes", proto(Struct("m" / Bytes(2), "a" / Bytes(this.m))),
     r"demo: frame\.a: size refers to 'm', which is not an integer field"),
    ("len-of-int", proto(Struct("n" / Int8ub, "a" / Bytes(len_(this.n)))),
     r"demo: frame\.a: size: len_\(n\) needs a bytes or array field"),
    ("operator-pow", proto(Struct("n" / Int8ub, "a" / Bytes(this.n ** 2))),
     r"demo: frame\.a: size: operator <built-in function pow> is not supported"),
    ("enum-name-unknown", proto(Struct("k" / Enum(Int8ub, a=1), "x" / If(this.k == "zz", Int8ub))),
     r"demo: frame\.x: condition: string 'zz' is not a name of the enum it is compared with"),
    ("rebuild-missing", proto(Struct("a" / Rebuild(Int8ub, len_(this.zz)))),
     r"demo: frame\.a: Rebuild refers to 'zz', which is not a field of the frame"),
    # ---- framing and shapes
    ("greedybytes-top-level", proto(Struct("a" / Int8ub, "b" / GreedyBytes)),
     r"demo: frame\.b: GreedyBytes must be the last field of a length-bounded frame \(wrap it in Prefixed, .*\)"),
    ("greedystring-top-level", proto(Struct("a" / GreedyString("utf8"))),
     r"demo: frame\.a: GreedyBytes must be the last field of a length-bounded frame .*"),
    ("greedybytes-not-last-in-region", proto(Struct("r" / Prefixed(Int8ub, Struct("a" / GreedyBytes, "b" / Int8ub)))),
     r"demo: frame\.r\.a: GreedyBytes must be the last field inside a Prefixed length"),
    ("condition-on-derived", proto(Struct("n" / Rebuild(Int8ub, len_(this.body)), "x" / If(this.n > 0, Int8ub),
                                          "body" / Bytes(this.n))),
     r"demo: frame\.x: the condition reads 'n', a derived \(Rebuild\) field; conditions may read plain fields only"),
    ("switch-scalar-case", proto(Struct("k" / Int8ub, "x" / Switch(this.k, {1: Int8ub}))),
     r"demo: frame\.x: Switch case 1 must be a Struct \(wrap the field in Struct\(\.\.\.\)\) so each case has its own field names"),
    ("switch-scalar-default", proto(Struct("k" / Int8ub, "x" / Switch(this.k, {1: Struct("y" / Int8ub)}, default=Int8ub))),
     r"demo: frame\.x: the Switch default must be a Struct or Pass"),
    ("switch-unknown-name", proto(Struct("k" / Int8ub, "x" / Switch(this.k, {"a": Struct("y" / Int8ub)}))),
     r"demo: frame\.x: Switch case 'a' is not a known enum name"),
    ("array-of-arrays", proto(Struct("n" / Int8ub, "x" / Array(this.n, Array(2, Int8ub)))),
     r"demo: frame\.x: array elements may hold integers, bit fields, constants and bytes only, not Array"),
    ("array-of-nested-structs", proto(Struct("n" / Int8ub, "x" / Array(this.n, Struct("a" / Struct("b" / Int8ub))))),
     r"demo: frame\.x: array elements may not nest structs"),
    ("array-of-empty", proto(Struct("n" / Int8ub, "x" / Array(this.n, Struct()))),
     r"demo: frame\.x: array elements must take at least one byte \(else the count is unbounded\)"),
    ("flattened-name-collision", proto(Struct("a_b" / Int8ub, "a" / Struct("b" / Int8ub))),
     r"demo: frame\.a\.b: its flattened name 'a_b' collides with field 'a_b'; rename one of them"),
    # ---- protocol settings
    ("name-hyphen", proto(GOOD, name="my-rpc"), r"my-rpc: name: protocol name 'my-rpc' contains '-': .*"),
    ("name-underscore", proto(GOOD, name="my_rpc"),
     r"my_rpc: name: protocol name 'my_rpc' contains '_': .*use \[a-z\]\[a-z0-9\]\*"),
    ("name-upper", proto(GOOD, name="MyRpc"), r"MyRpc: name: protocol name 'MyRpc' must match \[a-z\]\[a-z0-9\]\*"),
    ("max-frame-size", proto(GOOD, max_frame_size=3), r"demo: max_frame_size: must be an integer between 16 and 2\^31-1"),
    # ---- roles
    ("request-id-missing", proto(GOOD, request_id="nope"), r"demo: request_id: no field 'nope' in the frame"),
    ("request-id-bytes", proto(GOOD, request_id="method"), r"demo: request_id: 'method' is a Bytes, not an integer"),
    ("request-id-in-array", proto(Struct("n" / Int8ub, "x" / Array(this.n, Struct("a" / Int8ub))), request_id="x.a"),
     r"demo: request_id: 'x\.a' is inside an array; roles need a single value"),
    ("message-type-not-when", proto(GOOD, message_type=[1]),
     r"demo: message_type\[0\]: expected When\(<condition>, MessageType\.<X>\)"),
    ("message-type-lambda", proto(GOOD, message_type=[When(lambda c: 1, ir.MessageType.Request)]),
     r"demo: message_type\[0\]: condition is a Python lambda; use this\.<field> arithmetic"),
    ("heartbeat-lambda", proto(GOOD, heartbeat=Heartbeat(when=lambda c: 1, reply={})),
     r"demo: heartbeat\.when: condition is a Python lambda; use this\.<field> arithmetic"),
    ("routing-key-upper-case", proto(GOOD, routing_keys={"Method": "method"}),
     r"demo: routing_keys\.Method: key 'Method' must be lower-case \(\[a-z0-9_\.-\]\); Aeraki matches keys lower-cased"),
    ("routing-key-reserved-prefix", proto(GOOD, routing_keys={"x-meta-protocol-foo": "method"}),
     r"demo: routing_keys\.x-meta-protocol-foo: key 'x-meta-protocol-foo' is reserved by MetaProtocol"),
    ("routing-key-reserved-request-id", proto(GOOD, routing_keys={"x-request-id": "method"}),
     r"demo: routing_keys\.x-request-id: key 'x-request-id' is reserved by MetaProtocol"),
    ("routing-key-on-body", proto(GOOD, routing_keys={"b": "body"}),
     r"demo: routing_keys\.b: the body is never copied out of the frame; route on a header field"),
    ("routing-key-missing", proto(GOOD, routing_keys={"m": "nope"}), r"demo: routing_keys\.m: no field 'nope' in the frame"),
    ("routing-key-render-mismatch", proto(GOOD, routing_keys={"k": Key("id", Render.HEX)}),
     r"demo: routing_keys\.k: render 'hex' does not fit a Int field"),
    ("routing-key-render-name", proto(GOOD, routing_keys={"k": Key("id", Render.NAME)}),
     r"demo: routing_keys\.k: render 'name' needs an Enum field"),
    ("operation-name-missing", proto(GOOD, operation_name="{nope}"), r"demo: operation_name: no field 'nope' in the frame"),
    ("operation-name-format-spec", proto(GOOD, operation_name="{id:x}"),
     r"demo: operation_name: format specs are not supported; use \{field\}"),
    ("body-not-bytes", proto(GOOD, body="id"), r"demo: body: 'id' is a Int, the body must be a bytes field .*"),
    ("headers-missing", proto(GOOD, headers=HeaderMap("nope")), r"demo: headers: no field 'nope' in the frame"),
    ("headers-not-array", proto(GOOD, headers=HeaderMap("method")),
     r"demo: headers: 'method' is a Bytes, headers must be an Array/PrefixedArray of key/value"),
    ("headers-element-scalar", proto(Struct("h" / PrefixedArray(Int8ub, Int8ub)), headers=HeaderMap("h")),
     r"demo: headers: the array element must be a Struct with key and value fields"),
    ("headers-key-missing", proto(HM, headers=HeaderMap("h", key="k")),
     r"demo: headers\.key: element field 'k' must be a length-prefixed string"),
    ("headers-plain-count", proto(Struct("n" / Int8ub, "h" / Array(this.n, Struct(
        "key" / PascalString(Int8ub, "utf8"), "value" / PascalString(Int8ub, "utf8")))), headers=HeaderMap("h")),
     r"demo: headers: the count must be a PrefixedArray or Rebuild\(len_\(this\.<array>\)\)"),
    ("fixed-header-derived", proto(GOOD, fixed_headers={"k": "n"}),
     r"demo: fixed_headers\.k: 'n' is derived \(Rebuild\) and cannot be set"),
    ("fixed-header-not-prefixed", proto(Struct("id" / Int32ub, "m" / Bytes(3)), fixed_headers={"k": "m"}),
     r"demo: fixed_headers\.k: 'm' must be length-prefixed to be rewritten"),
    ("fixed-header-upper-case", proto(GOOD, fixed_headers={"X-Id": "id"}),
     r"demo: fixed_headers\.X-Id: key 'X-Id' must be lower-case .*"),
    ("error-reply-derived", proto(GOOD, error_reply={"n": 1}),
     r"demo: error_reply\.n: derived \(Rebuild\) fields are computed, not set"),
    ("error-reply-missing", proto(GOOD, error_reply={"zzz": 1}), r"demo: error_reply\.zzz: no field 'zzz' in the frame"),
    ("error-reply-out-of-range", proto(GOOD, error_reply={"kind": 300}),
     r"demo: error_reply\.kind: 300 does not fit the field \(0\.\.255\)"),
    ("error-reply-request-id-in-bytes", proto(GOOD, error_reply={"method": REQUEST_ID}),
     r"demo: error_reply\.method: RequestId goes into an integer field"),
    ("error-reply-message-in-int", proto(GOOD, error_reply={"id": ERROR_MESSAGE}),
     r"demo: error_reply\.id: ErrorMessage goes into a bytes/string field"),
    ("error-reply-code-out-of-range", proto(GOOD, error_reply={"kind": ErrorCode(default=256)}),
     r"demo: error_reply\.kind: 256 does not fit the field \(0\.\.255\)"),
    ("heartbeat-reply-missing", proto(GOOD, heartbeat=Heartbeat(when=this.kind == 1, reply={"nope": 1})),
     r"demo: heartbeat\.reply\.nope: no field 'nope' in the frame"),
]


@pytest.mark.parametrize("spec,message", [pytest.param(s, m, id=i) for i, s, m in REFUSED])
def test_refused_with_one_line_naming_the_field(spec, message):
    with pytest.raises(SpecError) as err:
        lower(spec)
    text = str(err.value)
    assert "\n" not in text, f"not one line: {text!r}"
    assert re.fullmatch(message, text), f"\n got: {text}\nwant: {message}"


def test_refusal_ids_are_unique():
    ids = [row[0] for row in REFUSED] + [row[0] for row in SUPPORTED]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------- known bugs (see the report)


def test_unbuildable_const_is_one_line():
    with pytest.raises(SpecError) as err:
        lower(proto(Struct("a" / Const(300, Int8ub))))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("max_bytes", [0, 11, 2.5, True])
def test_bounded_varint_takes_1_to_10_bytes(max_bytes):
    with pytest.raises(ValueError, match="max_bytes must be 1..10"):
        BoundedVarInt(max_bytes)


def test_bounded_varint_parses_and_builds_within_its_bound():
    vbi = BoundedVarInt(4)
    for value, raw in ((0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), ((1 << 28) - 1, b"\xff\xff\xff\x7f")):
        assert vbi.parse(raw) == value and vbi.build(value) == raw
        assert Struct("v" / vbi).compile().parse(raw).v == value
    with pytest.raises(ExplicitError):
        vbi.parse(b"\x80\x80\x80\x80\x00")
    with pytest.raises(ExplicitError):
        vbi.build(1 << 28)
    assert lower(proto(Struct("v" / vbi))).field(("v",)).node == ir.VarInt(max_bytes=4)


def test_hyphen_advice_is_a_valid_name():
    with pytest.raises(SpecError) as err:
        lower(proto(GOOD, name="my-rpc"))
    assert "use '_'" not in str(err.value)


@pytest.mark.parametrize("frame", [Struct("a" / Bytes(-1)), Struct("a" / Array(-2, Int8ub))], ids=["bytes", "array"])
def test_negative_literal_size_is_refused(frame):
    with pytest.raises(SpecError, match=r"demo: frame\.a: .*negative"):
        lower(proto(frame))


def test_if_then_else_scalar_message_names_if_then_else():
    with pytest.raises(SpecError) as err:
        lower(proto(Struct("a" / Int8ub, "b" / IfThenElse(this.a, Int8ub, Int16ub))))
    assert "Switch" not in str(err.value)
