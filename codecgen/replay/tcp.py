"""TCP stream reassembly from a capture file (scapy).

``read_streams(path, port)`` returns one ``Stream`` per TCP connection, in the order their
first packet appears, each with the client->server and server->client byte streams.

- Segments are placed by sequence number relative to the direction's initial sequence
  number (the SYN's, else the lowest seen, in 32-bit modular arithmetic), so capture
  order does not matter: out-of-order segments fall into place.
- Bytes already covered (retransmissions, overlapping segments) are taken once, first
  copy wins.
- A hole (a segment missing from the capture) ends the usable stream at the hole; the
  stream records where, and how many bytes are missing.
- SYN and FIN take one sequence number each and carry no data; data past a FIN or RST
  is ignored.  A new SYN on a 4-tuple whose connection has ended starts a new stream.
- The client is the side that sent the SYN (without ACK).  With ``port`` the server is
  the side on that port (and streams not on that port are skipped); with neither, the
  side with the lower port number is taken as the server.
- The payload length comes from the IP header, so link-layer padding is never data.
  IPv4 and IPv6 (without extension headers before TCP) are read; fragments are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from codecgen.errors import UserError

MOD = 1 << 32
SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


@dataclass
class Direction:
    """One direction of a connection: segments by relative sequence number."""

    isn: Optional[int] = None  # the sequence number of the first data byte
    isn_from_syn: bool = False
    segments: list = field(default_factory=list)  # (absolute seq, payload, time)
    end: Optional[int] = None  # relative offset of FIN/RST: data past it is ignored
    packets: int = 0

    def add(self, seq: int, payload: bytes, flags: int, time: float):
        self.packets += 1
        if flags & SYN:
            self.isn = (seq + 1) % MOD
            self.isn_from_syn = True
            seq = (seq + 1) % MOD
        if payload:
            self.segments.append((seq, payload, time))
        if flags & (FIN | RST):
            self.segments.append((seq + len(payload), None, time))

    def assemble(self) -> "Assembled":
        if self.isn is None:
            if not self.segments:
                return Assembled(b"", [], None, 0)
            # No SYN: the lowest sequence number seen, relative to the first one seen
            # (signed 32-bit differences, so a wrap of the counter is harmless).
            first = self.segments[0][0]
            self.isn = min(self.segments, key=lambda s: _signed(s[0] - first))[0]
        placed = []
        end = None
        for seq, payload, time in self.segments:
            rel = _signed(seq - self.isn)
            if payload is None:
                end = rel if end is None else min(end, rel)
                continue
            if rel < 0:  # before the SYN's ISN+1: garbage, or a keep-alive probe's byte
                payload = payload[-rel:]
                rel = 0
            if payload:
                placed.append((rel, payload, time))
        placed.sort(key=lambda s: s[0])  # stable: for equal offsets the first capture wins
        data = bytearray()
        times: list[tuple[int, float]] = []  # (end offset of a piece, time it arrived)
        gap = None
        for rel, payload, time in placed:
            if end is not None and rel >= end:
                break
            if end is not None:
                payload = payload[:end - rel]
            have = len(data)
            if rel > have:
                gap = (have, rel - have)
                break
            fresh = payload[have - rel:]
            if fresh:
                data += fresh
                times.append((len(data), time))
        return Assembled(bytes(data), times, gap, self.packets)


@dataclass
class Assembled:
    data: bytes
    times: list  # (end offset, time) per contiguous piece, ascending
    gap: Optional[tuple]  # (offset, missing bytes) of the first hole, or None
    packets: int

    def time_at(self, offset: int) -> Optional[float]:
        """When byte ``offset`` arrived (None for an empty stream)."""
        for end, time in self.times:
            if offset < end:
                return time
        return self.times[-1][1] if self.times else None


@dataclass
class Stream:
    index: int
    client: tuple  # (address, port)
    server: tuple
    how: str  # how the client side was found: "syn", "port" or "lower-port"
    c2s: Assembled
    s2c: Assembled


def _signed(v: int) -> int:
    v %= MOD
    return v - MOD if v >= MOD // 2 else v


class _Conn:
    def __init__(self, a, b):
        self.ends = (a, b)  # a: the first packet's sender
        self.dirs = {a: Direction(), b: Direction()}
        self.connector = None  # the side that sent a SYN without ACK
        self.finished = False


def _packets(path: str):
    try:
        import scapy.layers.inet  # noqa: F401 - registers IP/TCP
        import scapy.layers.inet6  # noqa: F401 - registers IPv6
        import scapy.layers.l2  # noqa: F401 - registers the link types (Ethernet, Linux cooked, ...)
        from scapy.error import Scapy_Exception
        from scapy.utils import PcapReader
    except ImportError:  # pragma: no cover - scapy is a dependency of replay
        raise UserError("replay needs scapy: pip install scapy") from None
    try:
        reader = PcapReader(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a capture") from None
    except (Scapy_Exception, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a pcap or pcapng capture ({str(exc).strip() or type(exc).__name__})") from None
    with reader:
        try:
            for pkt in reader:
                yield pkt
        except (Scapy_Exception, EOFError, OSError, ValueError, AttributeError) as exc:
            raise UserError(f"{path}: unreadable capture ({str(exc).strip() or type(exc).__name__})") from None


def _tcp_of(pkt):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    if IP in pkt:
        ip = pkt[IP]
        if ip.flags.MF or ip.frag:  # fragments are not reassembled
            return None
        if not isinstance(ip.payload, TCP):
            return None
        tcp = ip.payload
        size = ip.len - ip.ihl * 4 - tcp.dataofs * 4
    elif IPv6 in pkt:
        ip = pkt[IPv6]
        if not isinstance(ip.payload, TCP):
            return None
        tcp = ip.payload
        size = ip.plen - tcp.dataofs * 4
    else:
        return None
    raw = bytes(tcp.payload)
    payload = raw[:max(0, size)] if size is not None else raw
    return (ip.src, tcp.sport), (ip.dst, tcp.dport), tcp.seq, int(tcp.flags), payload


def read_streams(path: str, port: Optional[int] = None) -> list[Stream]:
    conns: list[_Conn] = []
    live: dict[frozenset, _Conn] = {}
    for pkt in _packets(path):
        parsed = _tcp_of(pkt)
        if parsed is None:
            continue
        src, dst, seq, flags, payload = parsed
        if port is not None and port not in (src[1], dst[1]):
            continue
        key = frozenset((src, dst))
        conn = live.get(key)
        syn_only = flags & SYN and not flags & ACK
        if conn is None or (syn_only and conn.finished):
            conn = _Conn(src, dst)
            conns.append(conn)
            live[key] = conn
        if syn_only:
            conn.connector = src
        conn.dirs[src].add(seq, payload, flags, float(pkt.time))
        if flags & (FIN | RST):
            conn.finished = True
    streams = []
    for conn in conns:
        a, b = conn.ends
        if port is not None and a[1] != b[1]:
            client, how = (b, "port") if a[1] == port else (a, "port")
        elif conn.connector is not None:
            client, how = conn.connector, "syn"
        else:
            client, how = (a, "lower-port") if a[1] > b[1] else (b, "lower-port")
        server = b if client == a else a
        streams.append(Stream(len(streams), client, server, how,
                              conn.dirs[client].assemble(), conn.dirs[server].assemble()))
    return streams
