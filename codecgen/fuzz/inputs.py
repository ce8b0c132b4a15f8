"""libFuzzer inputs for the fuzz target (codecgen/hostmodel/fuzz/codec_fuzzer.cc): the layout,
seeds built from the spec, and a dictionary of the spec's constants.

An input is ``control, param, stream...``: the first two bytes choose the direction, how the
stream is split into reads, and one extra call (encode with a mutation, onError, heartbeat);
the rest is the byte stream of one direction. ``parse_input`` is the exact mirror of the C++
target, so a libFuzzer finding becomes a differential case, a pcap and a readable summary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Optional

from codecgen import ir
from codecgen.ir.facts import facts
from codecgen.fuzz.spans import encode_varint
from codecgen.ir.walk import NodeVisitor
from codecgen.verify.fixtures import ERROR_MESSAGES, FIXED_MUTATIONS, FRAMEWORK_KEYS

EXTRA_NONE = "none"
EXTRAS = ("encode", "error", "heartbeat")


@dataclass
class Plan:
    """What the fuzz target does with one input (see the layout in codec_fuzzer.cc)."""

    direction: str  # "request" or "response"
    chunks: list[int]  # reads before the rest of the stream arrives in one last read
    split: bool  # the reads were split, so the target also compares with one read
    extra: str  # "none", "encode", "error", "heartbeat"
    encode_path: str = "request"  # encode: "request" or "response"
    empty_metadata: bool = False  # error: onError with an empty metadata
    last_frame: bool = False  # the extra call takes the last decoded frame
    own_key: bool = False  # the mutation changes the frame's first key
    error_type: int = 0
    message: str = ""
    fixed_mutation: dict = field(default_factory=dict)

    def mutation(self, first_key: Optional[str]) -> dict:
        if self.own_key and first_key is not None:
            return {first_key.upper(): "changed", "x-new": "1"}
        return dict(self.fixed_mutation)

    def describe(self) -> str:
        reads = f"{len(self.chunks)} read(s) then the rest" if self.split else "one read"
        text = f"{self.direction} direction, {reads}"
        if self.extra == "encode":
            mutation = ("the frame's first key upper-cased = 'changed', x-new = '1'" if self.own_key
                        else ", ".join(f"{k[:40]} = {v[:40]!r}" for k, v in self.fixed_mutation.items()))
            text += f", encode on the {self.encode_path} path with the mutation {{{mutation}}}"
        elif self.extra == "error":
            text += ", onError" + (" with an empty metadata" if self.empty_metadata else "")
        elif self.extra == "heartbeat":
            text += ", heartbeat encode"
        return text


def parse_input(data: bytes) -> tuple[Optional[Plan], bytes]:
    """The plan and the stream of a raw input; (None, b"") for inputs the target skips."""
    if len(data) < 2:
        return None, b""
    control, param, stream = data[0], data[1], bytes(data[2:])
    chunks: list[int] = []
    split = (control >> 1) & 3 == 3
    if split:
        if not param & 0x80:
            chunks = [(param & 127) * len(stream) // 128]
        else:
            chunks = [1] * min(len(stream), (param & 15) + 1)
    kind = (control >> 3) & 7
    extra = {5: "encode", 6: "error", 7: "heartbeat"}.get(kind, EXTRA_NONE)
    plan = Plan(
        direction="response" if control & 1 else "request",
        chunks=chunks,
        split=split,
        extra=extra,
        encode_path="response" if param & 8 else "request",
        empty_metadata=extra == "error" and bool(control & 0x40),
        last_frame=bool(control & 0x40),
        own_key=bool(control & 0x80),
        error_type=param % 6,
        message=ERROR_MESSAGES[(param >> 1) & 3],
        fixed_mutation=dict(FIXED_MUTATIONS[(param >> 4) & 3]),
    )
    return plan, stream


def make_input(stream: bytes, direction: str = "request", *, split_at: Optional[int] = None,
               bytewise: Optional[int] = None, extra: str = EXTRA_NONE, encode_path: str = "request",
               empty_metadata: bool = False, last_frame: bool = False, own_key: bool = False,
               param: int = 0) -> bytes:
    """Build a raw input. ``split_at`` (0..127, in 128ths of the stream) or ``bytewise`` (the
    first 1..16 bytes one per read) split the reads; the other fields choose the extra call.
    ``param`` supplies the bits the options leave free (error type, message, fixed mutation)."""
    control = 1 if direction == "response" else 0
    if split_at is not None or bytewise is not None:
        control |= 3 << 1
        if bytewise is not None:
            param = (param & 0x70) | 0x80 | ((bytewise - 1) & 15)
        else:
            param = split_at & 0x7F
    kind = {"encode": 5, "error": 6, "heartbeat": 7}.get(extra, 0)
    control |= kind << 3
    if extra == "encode":
        param = (param | 8) if encode_path == "response" else (param & ~8)
    if (extra == "error" and empty_metadata) or (extra != "error" and last_frame):
        control |= 0x40
    if own_key:
        control |= 0x80
    return bytes([control & 0xFF, param & 0xFF]) + bytes(stream)


# --------------------------------------------------------------------------- seeds


def seeds(proto: ir.ProtocolIR, module, rng: random.Random, count: int = 48) -> list[bytes]:
    """Valid frames from the spec, in both directions, alone and concatenated, with every
    extra call and several ways of splitting reads."""
    from codecgen.verify.values import random_frame

    frames: dict[str, list[bytes]] = {"request": [], "response": []}
    for direction in frames:
        for _ in range(max(4, count // 2)):
            try:
                frames[direction].append(random_frame(proto, module, rng, direction=direction))
            except RuntimeError:
                break
    out: list[bytes] = []
    for direction, pool in frames.items():
        if not pool:
            continue
        for i, frame in enumerate(pool):
            param = rng.randrange(256)
            choice = i % 8
            if choice == 0:
                out.append(make_input(frame, direction, param=param))
            elif choice == 1:
                out.append(make_input(frame, direction, extra="encode", encode_path="request",
                                      own_key=bool(i & 1), param=param))
            elif choice == 2:
                out.append(make_input(frame, direction, extra="encode", encode_path="response",
                                      param=param))
            elif choice == 3:
                out.append(make_input(frame, direction, extra="error", param=param))
            elif choice == 4:
                out.append(make_input(frame, direction, extra="heartbeat", param=param))
            elif choice == 5:
                out.append(make_input(frame, direction, bytewise=rng.randint(4, 16), param=param))
            elif choice == 6:
                stream = frame + rng.choice(pool) + rng.choice(pool)
                out.append(make_input(stream, direction, split_at=rng.randrange(128), param=param))
            else:
                out.append(make_input(frame + rng.choice(pool), direction, param=param,
                                      extra="encode", last_frame=True))
    out.append(make_input(b"", "request", extra="error", empty_metadata=True))
    return out


# --------------------------------------------------------------------------- dictionary


def _encode_int(value: int, t: ir.IntType) -> Optional[bytes]:
    bits = t.width * 8
    if t.signed:
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            return None
        value &= (1 << bits) - 1
    elif not 0 <= value < (1 << bits):
        return None
    return value.to_bytes(t.width, "little" if t.endian is ir.Endian.LITTLE else "big")


def _walk(node, path=()):
    """(path, node) of every node, including element and case nodes without a Field."""
    if isinstance(node, ir.Struct):
        for f in node.fields:
            yield f.path, f.node
            yield from _walk(f.node, f.path)
    elif isinstance(node, ir.Array):
        yield path, node.element
        yield from _walk(node.element, path)
    elif isinstance(node, ir.Region):
        yield path, node.inner
        yield from _walk(node.inner, path)
    elif isinstance(node, ir.If):
        yield from _walk(node.then, path)
    elif isinstance(node, ir.Switch):
        for _, case in node.cases:
            yield from _walk(case, path)
        if node.default is not None:
            yield from _walk(node.default, path)


def dictionary(proto: ir.ProtocolIR) -> list[bytes]:
    """Tokens for libFuzzer's -dict: constants, enum values and flag masks in their field's
    encoding, interesting lengths and counts in every length/count encoding, and the keys the
    framework reserves (a header map must not publish them)."""
    tokens: list[bytes] = []
    limit = proto.max_frame_size
    length_values = (0, 1, limit - 1, limit, limit + 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1,
                     (1 << 63) - 1, -1, -(1 << 31))

    def lengths(t: ir.IntType, extra=()) -> list[bytes]:
        return [token for value in (*length_values, t.max_value, t.min_value, *extra)
                if (token := _encode_int(value, t)) is not None]

    tokens_of = _Tokens(lengths, facts(proto).decode_refs, limit)
    for path, node in _walk(proto.frame):
        tokens += tokens_of.visit(node, path)
    tokens += [key.encode() for key in FRAMEWORK_KEYS]
    seen, out = set(), []
    for token in tokens:
        if token and token not in seen and len(token) <= 64:
            seen.add(token)
            out.append(token)
    return out


class _Tokens(NodeVisitor):
    """Dictionary tokens for one node (``lengths(int type, extra values)`` encodes lengths)."""

    def __init__(self, lengths, sizing, limit: int):
        self.lengths, self.sizing, self.limit = lengths, sizing, limit

    def visit_Const(self, node, path):
        return [node.value]

    def visit_Int(self, node, path):
        out = [token for _, value in node.enum + node.flags
               if (token := _encode_int(value, node.type)) is not None]
        return out + (self.lengths(node.type) if path in self.sizing else [])

    def visit_Bits(self, node, path):
        out = []
        for b in node.fields:
            shift = node.width * 8 - b.offset - b.width
            values = [v for _, v in b.enum] or ([1] if b.is_flag else [(1 << b.width) - 1])
            out += [((value & ((1 << b.width) - 1)) << shift).to_bytes(node.width, "big") for value in values]
        return out

    def visit_Bytes(self, node, path):
        if node.prefix is not None:
            return self.lengths(node.prefix)
        return self.visit_VarInt(node, path) if node.prefix_varint else []

    def visit_Region(self, node, path):
        return self.lengths(node.prefix)

    def visit_Array(self, node, path):
        return [] if node.prefix is None else self.lengths(node.prefix, (node.max_count, node.max_count + 1))

    def visit_ZigZag(self, node, path):
        return [encode_varint(v) for v in (1, 2, (1 << 64) - 1, (1 << 64) - 2)]  # -1, 1, min, max

    def visit_VarInt(self, node, path):
        return [b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02", b"\xff\xff\xff\xff\x0f",
                encode_varint(self.limit), encode_varint(self.limit + 1)]

    def _none(self, node, path):
        return []

    visit_Padding = visit_Struct = visit_If = visit_Switch = visit_Extension = _none


def dictionary_text(tokens: list[bytes]) -> str:
    """libFuzzer's dictionary format: one ``name="\\xNN..."`` line per token."""
    lines = [f"# codecgen fuzz dictionary: {len(tokens)} tokens from the spec"]
    for i, token in enumerate(tokens):
        lines.append(f'kw{i}="' + "".join(f"\\x{b:02x}" for b in token) + '"')
    return "\n".join(lines) + "\n"
