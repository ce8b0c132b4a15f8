"""A finding's byte stream as a pcap file (written with scapy) that opens in Wireshark.

The stream is one direction of a TCP connection over 127.0.0.1: a three-way handshake, one
segment per read the codec saw (so the capture shows the same read boundaries), then FIN.
Requests travel client -> server, responses server -> client; the server port is the
protocol's well-known port where there is one (Wireshark then picks the right dissector).
"""

from __future__ import annotations

from pathlib import Path

CLIENT_PORT = 40000
WELL_KNOWN_PORTS = {"dubbo": 20880, "kafka": 9092, "mqtt": 1883, "modbus": 502, "thrift": 9090}
DEFAULT_PORT = 9000
_MSS = 60000


def segments(data: bytes, chunks: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in chunks:
        if size > 0:
            out.append(data[at:at + size])
        at += size
    if at < len(data):
        out.append(data[at:])
    split = []
    for seg in out:
        for i in range(0, len(seg), _MSS):
            split.append(seg[i:i + _MSS])
    return [s for s in split if s]


def write_pcap(path: Path, data: bytes, chunks: list[int], direction: str, protocol: str) -> Path:
    """Write ``data`` (read in ``chunks``, the rest in one last read) as a TCP stream."""
    from scapy.layers.inet import IP, TCP  # imported here: scapy takes a second to load
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    server_port = WELL_KNOWN_PORTS.get(protocol, DEFAULT_PORT)
    client, server = ("127.0.0.1", CLIENT_PORT), ("127.0.0.1", server_port)
    sender, receiver = (client, server) if direction == "request" else (server, client)
    base = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
    c_seq, s_seq = 1000, 5000
    packets = [
        base / IP(src=client[0], dst=server[0]) / TCP(sport=client[1], dport=server[1], flags="S", seq=c_seq - 1),
        base / IP(src=server[0], dst=client[0]) / TCP(sport=server[1], dport=client[1], flags="SA",
                                                      seq=s_seq - 1, ack=c_seq),
        base / IP(src=client[0], dst=server[0]) / TCP(sport=client[1], dport=server[1], flags="A",
                                                      seq=c_seq, ack=s_seq),
    ]
    seq, ack = (c_seq, s_seq) if sender is client else (s_seq, c_seq)
    for seg in segments(data, chunks):
        packets.append(base / IP(src=sender[0], dst=receiver[0]) /
                       TCP(sport=sender[1], dport=receiver[1], flags="PA", seq=seq, ack=ack) / Raw(seg))
        seq += len(seg)
        packets.append(base / IP(src=receiver[0], dst=sender[0]) /
                       TCP(sport=receiver[1], dport=sender[1], flags="A", seq=ack, ack=seq))
    packets.append(base / IP(src=sender[0], dst=receiver[0]) /
                   TCP(sport=sender[1], dport=receiver[1], flags="FA", seq=seq, ack=ack))
    t = 1700000000.0
    for i, packet in enumerate(packets):
        packet.time = t + i * 0.001
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), packets)
    return path
