"""Differential test cases as data: each case runs on both engines and must agree.

A case is a small dict (kind, direction, input bytes, chunks, mutation, error
type, ...): the same shape is written as a reproducer and replayed by
``codecgen verify --replay FILE``.  Kinds:

- ``roundtrip``   a valid frame in one read
- ``split``       one or three frames, split at a point (every point for short frames)
- ``bytewise``    a frame fed one byte per read
- ``truncated``   a valid frame cut short: both engines wait, holding every byte
- ``garbage``     a valid frame with bytes changed, or random bytes
- ``oversize``    a length field pushed beyond max_frame_size
- ``mutation``    encode with added, changed and filtered keys, request and response path
- ``error``       onError for every ErrorType, with the frame's metadata or an empty one
- ``heartbeat``   the heartbeat reply
"""

from __future__ import annotations

import random
from typing import Iterator

from codecgen import ir
from codecgen.ir.facts import facts
from codecgen.verify.fixtures import ERROR_MESSAGES, FIXED_MUTATIONS
from codecgen.verify.values import random_frame



def _mutations(rng: random.Random, known_keys: list[str]) -> Iterator[dict]:
    yield from (dict(m) for m in FIXED_MUTATIONS[:3])
    if known_keys:
        key = rng.choice(known_keys)
        yield {key.upper(): "changed", "x-new": "1"}
        yield {key: ""}
    yield dict(FIXED_MUTATIONS[3])


def length_fields(proto: ir.ProtocolIR) -> list[tuple[int, int]]:
    """(offset, width) of top-level fields that size something, where the offset is fixed."""
    refs = facts(proto).decode_refs
    out = []
    for f in proto.frame.fields:
        if f.static_offset is None:
            continue
        node = f.node
        if isinstance(node, ir.Int) and f.path in refs:
            out.append((f.static_offset, node.type.width))
        elif isinstance(node, ir.Region):
            out.append((f.static_offset, node.prefix.width))
        elif isinstance(node, ir.Bytes) and node.prefix is not None:
            out.append((f.static_offset, node.prefix.width))
    return out


class CaseMaker:
    def __init__(self, proto: ir.ProtocolIR, module, rng: random.Random):
        self.proto = proto
        self.module = module
        self.rng = rng
        self.codec = module.Codec()

    def frame(self, direction: str = "request") -> bytes:
        return random_frame(self.proto, self.module, self.rng, direction=direction)

    def direction(self) -> str:
        return self.rng.choice(["request", "response"])

    def decoded(self, frame: bytes, direction: str):
        try:
            return self.codec.decode(bytearray(frame), direction)
        except self.module.ProtocolError:
            return None

    def keys_of(self, frame: bytes, direction: str) -> list[str]:
        md = self.decoded(frame, direction)
        return [k.decode("latin-1") for k in md.strings] if md else []

    def cases(self, count: int) -> Iterator[dict]:
        kinds = [self.roundtrip, self.split, self.bytewise, self.truncated, self.garbage,
                 self.oversize, self.mutation, self.error, self.heartbeat]
        produced = 0
        while produced < count:
            for make in kinds:
                for case in make():
                    yield case
                    produced += 1
                    if produced >= count:
                        return

    def roundtrip(self):
        direction = self.direction()
        yield {"kind": "roundtrip", "direction": direction, "data": self.frame(direction), "chunks": []}

    def split(self):
        direction = self.direction()
        one = self.frame(direction)
        points = range(1, len(one)) if len(one) <= 64 else self.rng.sample(range(1, len(one)), 48)
        for point in points:
            yield {"kind": "split", "direction": direction, "data": one, "chunks": [point]}
        three = one + self.frame(direction) + self.frame(direction)
        for _ in range(8):
            a, b = sorted(self.rng.sample(range(0, len(three) + 1), 2))
            yield {"kind": "split", "direction": direction, "data": three, "chunks": [a, b - a]}

    def bytewise(self):
        direction = self.direction()
        data = self.frame(direction) + self.frame(direction)
        yield {"kind": "bytewise", "direction": direction, "data": data, "chunks": [1] * len(data)}

    def truncated(self):
        direction = self.direction()
        frame = self.frame(direction)
        for cut in sorted({0, 1, len(frame) // 2, len(frame) - 1, self.rng.randrange(len(frame))}):
            if 0 <= cut < len(frame):
                yield {"kind": "truncated", "direction": direction, "data": frame[:cut], "chunks": []}

    def garbage(self):
        frame = bytearray(self.frame())
        for _ in range(6):
            mutated = bytearray(frame)
            for _ in range(self.rng.randint(1, 3)):
                at = self.rng.randrange(min(len(mutated), 32))
                mutated[at] = self.rng.choice([0x00, 0xFF, 0x7F, 0x80, self.rng.randrange(256)])
            yield {"kind": "garbage", "direction": self.direction(), "data": bytes(mutated), "chunks": []}
        noise = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
        yield {"kind": "garbage", "direction": self.direction(), "data": noise, "chunks": []}

    def oversize(self):
        """Every length/count field at a fixed offset pushed to its maximum, header only."""
        frame = bytearray(self.frame())
        for offset, width in length_fields(self.proto):
            if offset + width > len(frame):
                continue
            mutated = bytearray(frame)
            mutated[offset:offset + width] = b"\xff" * width
            yield {"kind": "oversize", "direction": "request", "data": bytes(mutated[: offset + width]),
                   "chunks": []}

    def mutation(self):
        direction = self.direction()
        frame = self.frame(direction)
        keys = self.keys_of(frame, direction)
        for mutation in _mutations(self.rng, keys):
            for path in ("request", "response"):
                yield {"kind": "mutation", "direction": direction, "data": frame, "mutation": mutation,
                       "path": path}

    def error(self):
        frame = self.frame()
        for error_type in ir.ErrorType:
            message = self.rng.choice(ERROR_MESSAGES)
            yield {"kind": "error", "direction": "request", "data": frame, "error_type": int(error_type),
                   "message": message}
            yield {"kind": "error", "direction": "request", "data": None, "error_type": int(error_type),
                   "message": message}

    def heartbeat(self):
        if self.proto.roles.heartbeat_reply is None:
            return
        for _ in range(4):
            frame = self.frame()
            md = self.decoded(frame, "request")
            if md is not None and md.message_type == "Heartbeat":
                yield {"kind": "heartbeat", "direction": "request", "data": frame}
                return
        yield {"kind": "heartbeat", "direction": "request", "data": self.frame()}
