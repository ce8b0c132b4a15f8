"""``codecgen replay SPEC PCAP``: TCP reassembly (scapy) and per-frame decoding of captures.

Synthetic captures are written here with scapy from real bytes (the Thrift, Kafka and
Modbus corpora), cut into small segments and then reordered, retransmitted, overlapped,
interleaved with other connections, wrapped around the sequence space, padded by the link
layer, truncated or given a hole.  The real captures (dumpcap, tests/corpus/) must replay to
exactly the frames the libraries sent.
"""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("scapy", reason="scapy (a codecgen dependency: pip install -e .) is not installed")

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Padding, Raw  # noqa: E402
from scapy.utils import wrpcap, wrpcapng  # noqa: E402

from codecgen.cli import main  # noqa: E402
from codecgen.replay.tcp import read_streams  # noqa: E402
from conftest import ROOT

CORPUS = ROOT / "tests" / "corpus"
REAL = ("thrift", "thriftheader", "kafka", "modbus", "mqtt", "bolt", "tars")  # the captured corpora
SPEC = {name: str(ROOT / "protocols" / f"{name}.py") for name in REAL}
U64 = (1 << 64) - 1


def corpus_bytes(name, conn=0):
    return ((CORPUS / name / f"conn{conn}.c2s.bin").read_bytes(),
            (CORPUS / name / f"conn{conn}.s2c.bin").read_bytes())


def expected(name):
    return json.loads((CORPUS / name / "expected.json").read_text())


def run(capsys, *argv):
    code = main(["replay", *map(str, argv)])
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return code, lines, err


def frames_of(lines, stream=None, direction=None):
    return [ln for ln in lines if "message_type" in ln
            and (stream is None or ln["stream"] == stream)
            and (direction is None or ln["direction"] == direction)]


# --------------------------------------------------------------------------- capture builder


class Conn:
    """One TCP connection's packets, built segment by segment."""

    def __init__(self, client=("127.0.0.1", 40001), server=("127.0.0.1", 9090), isn=(1000, 5000), v6=False):
        self.client, self.server = client, server
        self.seq = {"c": isn[0], "s": isn[1]}
        self.v6 = v6
        self.packets = []

    def _pkt(self, side, flags, payload=b"", seq=None, pad=0):
        src, dst = (self.client, self.server) if side == "c" else (self.server, self.client)
        other = "s" if side == "c" else "c"
        ip = IPv6(src="::1", dst="::1") if self.v6 else IP(src=src[0], dst=dst[0])
        pkt = Ether() / ip / TCP(sport=src[1], dport=dst[1], flags=flags,
                                 seq=(self.seq[side] if seq is None else seq) % (1 << 32),
                                 ack=self.seq[other] % (1 << 32))
        if payload:
            pkt = pkt / Raw(payload)
        if pad:
            pkt = pkt / Padding(b"\0" * pad)
        return pkt

    def handshake(self):
        self.packets.append(self._pkt("c", "S"))
        self.seq["c"] += 1
        self.packets.append(self._pkt("s", "SA"))
        self.seq["s"] += 1
        self.packets.append(self._pkt("c", "A"))
        return self

    def send(self, side, data, mss=1000, pad=False):
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.packets.append(self._pkt(side, "PA", chunk, pad=max(0, 6 - len(chunk)) if pad else 0))
            self.seq[side] += len(chunk)
        return self

    def close(self):
        self.packets.append(self._pkt("c", "FA"))
        self.seq["c"] += 1
        self.packets.append(self._pkt("s", "FA"))
        self.seq["s"] += 1
        self.packets.append(self._pkt("c", "A"))
        return self


def exchange(conn, name, mss=1000, pad=False, conn_index=0):
    """The corpus connection's frames, request by request with each answer after it."""
    from codecgen.backends import python as pyb
    from codecgen.frontend import load

    module = pyb.load(load(SPEC[name]))
    c2s, s2c = corpus_bytes(name, conn_index)
    reqs, rsps = module.decode_all(c2s, "request")[0], module.decode_all(s2c, "response")[0]
    rsp_by_id = {}
    for r in rsps:
        rsp_by_id.setdefault(r.request_id, []).append(r)
    for req in reqs:
        conn.send("c", req.frame, mss, pad)
        for r in rsp_by_id.pop(req.request_id, []):
            conn.send("s", r.frame, mss, pad)
    assert not rsp_by_id
    return c2s, s2c


def write(tmp_path, packets, name="x.pcap", ng=False):
    path = tmp_path / name
    for i, pkt in enumerate(packets):
        pkt.time = 1_700_000_000 + i * 0.001
    (wrpcapng if ng else wrpcap)(str(path), packets)
    return path


def assembled(path, port=None):
    return [(s.c2s.data, s.s2c.data) for s in read_streams(str(path), port)]


# --------------------------------------------------------------------------- the real captures


@pytest.mark.parametrize("engine", ["python", "cpp"])
@pytest.mark.parametrize("name", REAL)
def test_real_capture_replays_to_the_frames_the_libraries_sent(capsys, name, engine):
    meta = expected(name)
    for port in (None, meta["port"]):
        extra = [] if port is None else ["--port", port]
        code, lines, err = run(capsys, SPEC[name], CORPUS / name / "capture.pcap", "--engine", engine, *extra)
        assert code == 0, err
        summary = lines[-1]["summary"]
        assert summary["errors"] == 0 and summary["incomplete"] == 0 and "gaps" not in summary
        assert summary["streams"] == len(meta["connections"])
        for index, frames in enumerate(meta["connections"]):
            for direction in ("request", "response"):
                # Decoded as requests, frames also carry codecgen's mark (ir.CODEC_ID_KEY).
                mark = {"x-codecgen-codec": f"aeraki.meta_protocol.codec.{name}"} if direction == "request" else {}
                want = [(f["message_type"], f["request_id"] & U64, {**f["keys"], **mark})
                        for f in frames if f["direction"] == direction]
                got = [(f["message_type"], f["request_id"], f["metadata"])
                       for f in frames_of(lines, index, direction)]
                assert got == want, (name, index, direction)
        # One line per frame, in capture order: every response after its request.
        times = [ln["time"] for ln in lines[:-1]]
        assert times == sorted(times)


@pytest.mark.parametrize("name", REAL)
def test_real_capture_reassembles_to_the_bytes_the_proxy_relayed(name):
    meta = expected(name)
    streams = read_streams(str(CORPUS / name / "capture.pcap"))
    assert [s.how for s in streams] == ["syn"] * len(meta["connections"])
    assert all(s.server[1] == meta["port"] for s in streams)
    for index, stream in enumerate(streams):
        assert (stream.c2s.data, stream.s2c.data) == corpus_bytes(name, index)
        assert stream.c2s.gap is None and stream.s2c.gap is None


# --------------------------------------------------------------------------- reassembly


def test_out_of_order_retransmitted_and_overlapping_segments(tmp_path, capsys):
    conn = Conn().handshake()
    c2s, s2c = exchange(conn, "thrift", mss=7, pad=True)
    conn.close()
    in_order = write(tmp_path, conn.packets, "in-order.pcap")
    rng = random.Random(4)
    data_pkts = conn.packets[3:-3]
    shuffled = list(data_pkts)
    rng.shuffle(shuffled)
    # Retransmissions: exact copies, and a longer segment overlapping two earlier ones.
    dupes = [p.copy() for p in rng.sample(data_pkts, 15)]
    first = data_pkts[0]
    overlap = first.copy()
    overlap[TCP].remove_payload()
    overlap = overlap / Raw(c2s[3:17])
    overlap[TCP].seq = first[TCP].seq + 3
    # A keep-alive probe: one byte before the next sequence number, already acknowledged.
    probe = first.copy()
    probe[TCP].remove_payload()
    probe = probe / Raw(b"\xff")
    probe[TCP].seq = first[TCP].seq - 1 + len(c2s)
    packets = conn.packets[:3] + shuffled[:40] + dupes + [overlap, probe] + shuffled[40:] + conn.packets[-3:]
    messy = write(tmp_path, packets, "messy.pcap")
    assert assembled(messy) == assembled(in_order) == [(c2s, s2c)]
    code, lines, _ = run(capsys, SPEC["thrift"], messy)
    code2, lines2, _ = run(capsys, SPEC["thrift"], in_order)
    assert code == code2 == 0
    # The same frames; only their times (the segment that completed each) differ.
    def strip(ls):
        return sorted(({k: v for k, v in ln.items() if k != "time"} for ln in ls if "message_type" in ln),
                      key=lambda ln: (ln["stream"], ln["direction"], ln["offset"]))

    assert strip(lines) == strip(lines2) and len(strip(lines)) == 13
    assert lines[-1]["summary"]["frames"] == 13


def test_several_streams_interleaved_over_ipv4_and_ipv6(tmp_path, capsys):
    a = Conn(client=("127.0.0.1", 40001), server=("127.0.0.1", 9090)).handshake()
    b = Conn(client=("127.0.0.1", 40002), server=("127.0.0.1", 9090), isn=(7, 9)).handshake()
    c = Conn(client=("::1", 40003), server=("::1", 9090), v6=True).handshake()
    exchange(a, "thrift", mss=50, conn_index=0)
    exchange(b, "thrift", mss=13, conn_index=1)
    exchange(c, "thrift", mss=1000, conn_index=0)
    for conn in (a, b, c):
        conn.close()
    # Interleave the three connections packet by packet, keeping each one's own order.
    merged, queues = [], [list(a.packets), list(b.packets), list(c.packets)]
    while any(queues):
        for q in queues:
            if q:
                merged.append(q.pop(0))
    path = write(tmp_path, merged, "three.pcapng", ng=True)
    streams = read_streams(str(path))
    assert [(s.client[1], s.server[1]) for s in streams] == [(40001, 9090), (40002, 9090), (40003, 9090)]
    assert [(s.c2s.data, s.s2c.data) for s in streams] == [corpus_bytes("thrift", 0), corpus_bytes("thrift", 1),
                                                           corpus_bytes("thrift", 0)]
    code, lines, _ = run(capsys, SPEC["thrift"], path)
    assert code == 0
    assert [len(frames_of(lines, i)) for i in range(3)] == [13, 9, 13]
    assert lines[-1]["summary"]["streams"] == 3 and lines[-1]["summary"]["frames"] == 35


def test_the_syn_sender_is_the_client_whatever_the_ports(tmp_path, capsys):
    # The client's port is lower than the server's: only the SYN tells them apart.
    conn = Conn(client=("127.0.0.1", 1000), server=("127.0.0.1", 60000)).handshake()
    exchange(conn, "modbus")
    conn.close()
    packets = conn.packets
    # The capture starts with the server's SYN-ACK (the client's SYN came just before).
    path = write(tmp_path, packets[1:2] + packets[:1] + packets[2:])
    (stream,) = read_streams(str(path))
    assert stream.how == "syn" and stream.client == ("127.0.0.1", 1000)
    code, lines, _ = run(capsys, SPEC["modbus"], path)
    assert code == 0 and lines[-1]["summary"]["frames"] == 24


def test_without_a_handshake_port_names_the_server(tmp_path, capsys):
    conn = Conn(client=("127.0.0.1", 1000), server=("127.0.0.1", 60000), isn=(2**32 - 40, 2**32 - 3))
    exchange(conn, "thrift", mss=5)  # and the sequence numbers wrap around 2^32
    path = write(tmp_path, conn.packets)
    # No SYN: the lower port is taken as the server's, which is wrong here: the calls
    # arrive "from the server" ...
    code, lines, err = run(capsys, SPEC["thrift"], path)
    assert code == 1 and "stream 0 response at byte 0" in err
    # ... and --port says which side serves.
    code, lines, _ = run(capsys, SPEC["thrift"], path, "--port", 60000)
    assert code == 0 and lines[-1]["summary"]["frames"] == 13
    (stream,) = read_streams(str(path), 60000)
    assert stream.how == "port" and (stream.c2s.data, stream.s2c.data) == corpus_bytes("thrift")


def test_port_selects_streams(tmp_path, capsys):
    a = Conn(server=("127.0.0.1", 9090)).handshake()
    exchange(a, "thrift")
    b = Conn(client=("127.0.0.1", 40002), server=("127.0.0.1", 9092)).handshake()
    exchange(b, "kafka")
    path = write(tmp_path, a.close().packets + b.close().packets)
    code, lines, _ = run(capsys, SPEC["kafka"], path, "--port", 9092)
    assert code == 0 and lines[-1]["summary"]["streams"] == 1 and lines[-1]["summary"]["frames"] == 28
    code, lines, _ = run(capsys, SPEC["thrift"], path, "--port", 9090)
    assert code == 0 and lines[-1]["summary"]["frames"] == 13
    # Without --port the Kafka stream is decoded as Thrift, and fails.
    code, lines, err = run(capsys, SPEC["thrift"], path)
    assert code == 1 and "stream 1" in err


def test_a_new_connection_on_the_same_ports_is_a_new_stream(tmp_path):
    first = Conn(isn=(100, 200)).handshake()
    exchange(first, "modbus")
    second = Conn(isn=(900000, 800000)).handshake()
    second.send("c", b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01")
    path = write(tmp_path, first.close().packets + second.close().packets)
    streams = read_streams(str(path))
    assert len(streams) == 2 and streams[1].c2s.data == b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01"


# --------------------------------------------------------------------------- errors and oddities


def test_a_frame_that_fails_exits_1_with_its_position(tmp_path, capsys):
    c2s, s2c = corpus_bytes("thrift")
    bad = bytearray(c2s)
    bad[21 + 4] = 0x7F  # the second frame's version byte (the first frame is 21 bytes)
    conn = Conn().handshake().send("c", bytes(bad), mss=9).send("s", s2c).close()
    code, lines, err = run(capsys, SPEC["thrift"], write(tmp_path, conn.packets))
    assert code == 1
    errors = [ln for ln in lines if "error" in ln]
    assert len(errors) == 1
    assert errors[0]["stream"] == 0 and errors[0]["direction"] == "request" and errors[0]["offset"] == 21
    assert errors[0]["client"] == "127.0.0.1:40001" and errors[0]["server"] == "127.0.0.1:9090"
    assert "frame.frame.version" in errors[0]["error"]
    assert err.count("\n") == 1 and err.startswith("codecgen: replay: stream 0 request at byte 21:")
    assert len(frames_of(lines, 0, "request")) == 1 and len(frames_of(lines, 0, "response")) == 6
    assert lines[-1]["summary"]["errors"] == 1
    code, lines, err = run(capsys, SPEC["thrift"], write(tmp_path, conn.packets), "--engine", "cpp")
    assert code == 1 and [ln["offset"] for ln in lines if "error" in ln] == [21]


def test_a_request_seen_from_the_server_side_is_an_error(tmp_path, capsys):
    c2s, s2c = corpus_bytes("thrift")
    conn = Conn().handshake().send("c", c2s).send("s", c2s).close()  # the server "answers" with CALLs
    code, lines, err = run(capsys, SPEC["thrift"], write(tmp_path, conn.packets))
    assert code == 1 and "stream 0 response at byte 0" in err


def test_capture_cut_mid_frame_is_incomplete_not_an_error(tmp_path, capsys):
    c2s, s2c = corpus_bytes("kafka")
    conn = Conn().handshake().send("c", c2s[:-5]).send("s", s2c)
    code, lines, _ = run(capsys, SPEC["kafka"], write(tmp_path, conn.packets))
    assert code == 0
    (incomplete,) = [ln for ln in lines if "incomplete" in ln]
    assert incomplete["direction"] == "request" and incomplete["incomplete"] == len(c2s) - 5 - incomplete["offset"]
    assert lines[-1]["summary"]["incomplete"] == 1 and lines[-1]["summary"]["frames"] == 27


def test_a_hole_in_the_capture_is_reported_and_decoding_stops_there(tmp_path, capsys):
    c2s, s2c = corpus_bytes("modbus")
    conn = Conn().handshake().send("c", c2s, mss=12).send("s", s2c).close()
    packets = [p for i, p in enumerate(conn.packets) if i != 3 + 5]  # the 6th request segment is lost
    code, lines, err = run(capsys, SPEC["modbus"], write(tmp_path, packets))
    assert code == 0 and "warning: 1 direction(s) have a hole" in err
    (gap,) = [ln for ln in lines if "missing" in ln]
    assert gap["direction"] == "request" and gap["offset"] == 60 and gap["missing"] == 12
    assert len(frames_of(lines, 0, "request")) == 5 and len(frames_of(lines, 0, "response")) == 12
    assert lines[-1]["summary"]["gaps"] == 1


def test_non_tcp_packets_and_empty_captures(tmp_path, capsys):
    from scapy.layers.inet import UDP

    path = write(tmp_path, [Ether() / IP() / UDP(sport=1, dport=2) / Raw(b"x")])
    code, lines, err = run(capsys, SPEC["thrift"], path)
    assert code == 1 and lines == [{"summary": lines[0]["summary"]}] and lines[0]["summary"]["streams"] == 0
    assert err == f"codecgen: replay: {path}: no TCP stream at all: nothing decoded\n"


def test_a_port_no_stream_uses_says_so_and_exits_1(tmp_path, capsys):
    a = Conn(server=("127.0.0.1", 9090)).handshake()
    exchange(a, "thrift")
    path = write(tmp_path, a.close().packets)
    code, lines, err = run(capsys, SPEC["thrift"], path, "--port", 9999)
    assert code == 1 and lines[-1]["summary"]["streams"] == 0
    assert err == f"codecgen: replay: {path}: no TCP stream on port 9999: nothing decoded\n"


@pytest.mark.parametrize("argv, message", [
    (["{spec}", "{missing}"], "no such file"),
    (["{spec}", "{text}"], "not a pcap"),
    (["{spec}", "{dir}"], "is a directory"),
    (["{nospec}", "{pcap}"], "no such spec file"),
    (["{spec}", "{pcap}", "--port", "70000"], "--port 70000"),
    (["{spec}", "{pcap}", "--engine", "rust"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a capture\n" * 10)
    values = {"spec": SPEC["thrift"], "missing": tmp_path / "nope.pcap", "text": text, "dir": tmp_path,
              "nospec": tmp_path / "nope.py", "pcap": CORPUS / "thrift" / "capture.pcap"}
    code = main(["replay", *[a.format(**values) for a in argv]])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("codecgen: error:") and message in err
    assert "Traceback" not in err
