"""``codecgen pcap``: sample conversations of a protocol as a capture file (written with scapy).

Each conversation is one TCP connection over 127.0.0.1 to the protocol's server port (the port
the Kubernetes examples and the Wireshark dissector use): requests built by the sample client
(``Sample.request``) with routing keys set, the sample server's responses, a heartbeat and its
reply where the spec has one, and the codec's own error reply (``on_error``). Segments are
coalesced (several frames in one segment) and split (a frame across segments, at a point that
varies), so a dissector's reassembly is exercised.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Optional

from codecgen import ir
from codecgen.backends.k8s import DEFAULT_PORT
from codecgen.errors import UserError
from codecgen.fuzz.pcap import CLIENT_PORT
from codecgen.sample import Sample

ERROR_EVERY = 5  # every fifth request is answered with the codec's error reply


def _keys(sample: Sample, i: int) -> dict:
    """Routing key values for request ``i``: text keys 'v<i>', integer keys i % 8."""
    out = {}
    for rk in sample.proto.roles.routing_keys:
        if rk.path[:-1] in sample.extensions:
            out[rk.key] = f"v{i % 3}"
            continue
        field = ir.find_field(sample.proto.frame, rk.path)
        out[rk.key] = f"v{i % 3}" if field is not None and isinstance(field.node, ir.Bytes) else str(i % 8)
    return out


def _request(sample: Sample, codec, i: int) -> bytes:
    """A request with routing keys set; the plain sample request where the layout cannot carry
    them (a key on a case the sample values do not select, a value the field cannot hold)."""
    try:
        frame = sample.request(_keys(sample, i), i)
        if codec.decode(bytearray(frame), "request") is not None:
            return frame
    except Exception:  # noqa: BLE001 - construct's and the codec's errors alike
        pass
    return sample.request({}, i)


def exchanges(sample: Sample, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (request, reply) pairs: requests, responses, heartbeats, error replies."""
    codec = sample.module.Codec()
    out = []
    for i in range(1, count + 1):
        heartbeat = sample.heartbeat(i) if i % 4 == 0 else None
        frame = heartbeat if heartbeat is not None else _request(sample, codec, i)
        md = codec.decode(bytearray(frame), "request")
        if md is None:
            raise UserError(f"{sample.proto.name}: the sample request {i} does not decode")
        if heartbeat is not None:
            reply = codec.heartbeat(md)
        elif i % ERROR_EVERY == 0:
            reply = codec.on_error(md, ir.ErrorType.RouteNotFound, f"no route for request {i}")
        elif md.message_type == "Oneway":
            reply = b""
        else:
            reply = sample.response(frame, md, "v1")
        out.append((frame, reply))
    return out


def segments(data: list[bytes], rng: random.Random) -> list[bytes]:
    """The frames of one direction as TCP payloads: pairs coalesced, others split in two."""
    stream = b"".join(data)
    cuts, at = [], 0
    for i, frame in enumerate(data):
        at += len(frame)
        if i % 3 == 1 and len(frame) > 1:
            cuts.append(at - len(frame) + rng.randrange(1, len(frame)))  # split inside this frame
        if i % 3 != 0:
            cuts.append(at)  # frames 0 and 1 of each triple share a segment
    cuts = sorted(set(c for c in cuts if 0 < c < len(stream)))
    bounds = [0] + cuts + [len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def write_streams(out, conversations: list, port: int = DEFAULT_PORT) -> Path:
    """Write TCP connections over 127.0.0.1 to ``out``: each conversation is a list of
    (direction, payload) segments in order, direction "request" (client to server) or
    "response"; every connection has its handshake and its FIN exchange."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    path = Path(out)
    if not path.parent.exists():
        raise UserError(f"-o {out}: the folder {path.parent} does not exist")
    packets, t = [], 1700000000.0
    base = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    host = "127.0.0.1"

    def send(sport, dport, flags, seq, ack, payload=b""):
        nonlocal t
        pkt = base / IP(src=host, dst=host) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
        if payload:
            pkt = pkt / Raw(payload)
        t += 0.0005
        pkt.time = t
        packets.append(pkt)

    for index, segments_ in enumerate(conversations):
        client = CLIENT_PORT + index
        cs, ss = 1000, 5000
        send(client, port, "S", cs - 1, 0)
        send(port, client, "SA", ss - 1, cs)
        send(client, port, "A", cs, ss)
        for direction, payload in segments_:
            if direction == "request":
                send(client, port, "PA", cs, ss, payload)
                cs += len(payload)
            else:
                send(port, client, "PA", ss, cs, payload)
                ss += len(payload)
        send(client, port, "FA", cs, ss)
        send(port, client, "FA", ss, cs + 1)
        send(client, port, "A", cs + 1, ss + 1)
    wrpcap(str(path), packets)
    return path


def write(spec: str, out: str, count: int = 12, conversations: int = 2, seed: int = 1,
          port: Optional[int] = None) -> Path:
    """Write ``conversations`` connections of ``count`` exchanges each to ``out``."""
    if count < 1 or conversations < 1:
        raise UserError("--count and --conversations must be at least 1")
    sample = Sample.load(spec)
    rng = random.Random(seed)
    convs = []
    for _ in range(conversations):
        pairs = exchanges(sample, count)
        segs = []
        # Requests travel in groups of three (coalesced and split), then their replies.
        for g in range(0, len(pairs), 3):
            group = pairs[g:g + 3]
            segs += [("request", seg) for seg in segments([q for q, _ in group], rng)]
            replies = [r for _, r in group if r]
            segs += [("response", seg) for seg in segments(replies, rng)] if replies else []
        convs.append(segs)
    return write_streams(out, convs, port or DEFAULT_PORT)
