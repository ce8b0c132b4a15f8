"""protocols/{thrift,thriftheader,kafka,modbus,mqtt,bolt,tars}.py proved on bytes from implementations nobody
here wrote.

- The corpora (tests/corpus/<proto>/, written by tests/corpus/generate.py from real
  clients and servers, captured with dumpcap): both engines decode every frame with the
  message type, request id and routing keys the libraries say they sent, and agree with
  each other field by field.
- Wireshark: the routing keys, request ids and message types equal tshark's own
  dissection of the same capture, PDU by PDU (tshark 4.0.17 has no THeader dissector: it
  shows those frames as undissected data, so thriftheader is not compared).
- Live: the same libraries' traffic today, recorded at a proxy, decodes the same way.
- Error replies: our onError bytes (both engines) are the protocol's error to the real
  client: Thrift raises TApplicationException, pymodbus returns an exception response
  with 0x0A/0x0B, kafka-python's parser matches the correlation id, paho sees a refused
  CONNECT (CONNACK 3) and takes our PINGRESP heartbeat reply.
- Thrift, Kafka, Modbus and MQTT have no mutable header: encode with a mesh's usual mutation
  returns every real frame unchanged (the real peers get the exact bytes they sent).
- THeader's info headers are mutable: a header added and one replaced by our encode (each
  engine) reach the real THeader server, which reads them with the library's own parser; the
  same against Apache Thrift's Node.js THeader server (a second implementation, tests/node),
  whose replies both engines decode.

Everything talks to 127.0.0.1 only; servers are started here and stopped at the end.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from codecgen.backends import python as pyb
from codecgen.frontend import load
from codecgen.ir import ErrorType
from conftest import ROOT

pytestmark = [pytest.mark.filterwarnings("ignore:read_text is deprecated"),  # kafka-python's schema loader
              pytest.mark.filterwarnings("ignore:open_text is deprecated")]

CORPUS = ROOT / "tests" / "corpus"
PROTOCOLS = ("thrift", "thriftheader", "kafka", "modbus", "mqtt", "bolt", "tars")
IMMUTABLE = ("thrift", "kafka", "modbus", "mqtt")  # no mutable header in the layout
DISSECTED = ("thrift", "kafka", "modbus", "mqtt")  # tshark 4.0.17 has a dissector
ENGINES = ("python", "cpp")
U64 = (1 << 64) - 1


def _peers():
    spec = importlib.util.spec_from_file_location("codecgen_test_peers", CORPUS / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peers = _peers()


@pytest.fixture(scope="module")
def protos():
    return {name: load(ROOT / "protocols" / f"{name}.py") for name in PROTOCOLS}


@pytest.fixture(scope="module")
def natives(protos):
    from codecgen.engines.native import native_codec

    codecs = {}

    def get(name):
        if name not in codecs:
            codecs[name] = native_codec(protos[name])
        return codecs[name]

    yield get
    for codec in codecs.values():
        codec.close()


def decode(protos, natives, name, data, direction, engine):
    """(frames as `codecgen decode` JSON, bytes held, error) for one direction's bytes."""
    from codecgen.engines import Engine

    runner = Engine(protos[name], engine, native=natives(name) if engine == "cpp" else None)
    result = runner.decode(bytes(data), direction)
    return result.frames, result.held, result.error


def summary(frame: dict) -> tuple:
    return frame["message_type"], frame["request_id"], frame["metadata"]


def mark(name: str, direction: str) -> dict:
    """codecgen's mark (codecgen.ir.CODEC_ID_KEY), which the codec adds to what a request carries."""
    return {"x-codecgen-codec": f"aeraki.meta_protocol.codec.{name}"} if direction == "request" else {}


def expected_summary(e: dict, name: str) -> tuple:
    return e["message_type"], e["request_id"] & U64, {**e["keys"], **mark(name, e["direction"])}


def corpus(name):
    meta = json.loads((CORPUS / name / "expected.json").read_text())
    conns = []
    for i, expected in enumerate(meta["connections"]):
        conns.append({"request": (CORPUS / name / f"conn{i}.c2s.bin").read_bytes(),
                      "response": (CORPUS / name / f"conn{i}.s2c.bin").read_bytes(),
                      "expected": expected})
    return meta["port"], conns


def check_streams(protos, natives, name, conns, engine):
    total = 0
    for i, conn in enumerate(conns):
        for direction in ("request", "response"):
            frames, held, error = decode(protos, natives, name, conn[direction], direction, engine)
            assert error is None and held == 0, (name, i, direction, error, held)
            want = [expected_summary(e, name) for e in conn["expected"] if e["direction"] == direction]
            got = [summary(f) for f in frames]
            assert got == want, (name, i, direction)
            total += len(frames)
    return total


# --------------------------------------------------------------------------- corpora


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", PROTOCOLS)
def test_corpus_every_frame_decodes_as_the_library_sent_it(protos, natives, name, engine):
    _, conns = corpus(name)
    total = check_streams(protos, natives, name, conns, engine)
    assert total == sum(len(c["expected"]) for c in conns) >= 20


@pytest.mark.parametrize("name", PROTOCOLS)
def test_corpus_engines_agree_field_by_field(protos, natives, name):
    _, conns = corpus(name)
    for conn in conns:
        for direction in ("request", "response"):
            py = decode(protos, natives, name, conn[direction], direction, "python")
            cpp = decode(protos, natives, name, conn[direction], direction, "cpp")
            assert py == cpp


@pytest.mark.parametrize("name", IMMUTABLE)
def test_corpus_frames_pass_through_encode_unchanged(protos, natives, name):
    """No mutable header in these layouts: a mesh's mutation leaves every frame as it was."""
    module = pyb.load(protos[name])
    mutation = {"x-request-id": "3f1c", "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "route": "v2"}
    _, conns = corpus(name)
    for conn in conns:
        for direction in ("request", "response"):
            buf = bytearray(conn[direction])
            codec = module.Codec()
            while buf:
                md = codec.decode(buf, direction)
                assert md is not None
                if md.message_type == "Heartbeat":
                    continue  # answered or swallowed by the framework, never encoded with a mutation
                assert codec.encode(md, mutation, md.frame) == md.frame
                path = "request" if direction == "request" else "response"
                assert natives(name).encode(md.frame, direction, mutation, path) == md.frame


# --------------------------------------------------------------------------- tshark

TSHARK_ARGS = {
    "thrift": lambda port: ["-d", f"tcp.port=={port},thrift"],
    "kafka": lambda port: ["-d", f"tcp.port=={port},kafka"],
    "modbus": lambda port: ["-o", f"mbtcp.tcp.port:{port}"],
    "mqtt": lambda port: ["-d", f"tcp.port=={port},mqtt"],
}
THRIFT_TYPES = {1: "Request", 2: "Response", 3: "Error", 4: "Oneway"}


def _find(tree, key):
    """The first value of ``key`` in a tshark JSON subtree, depth first."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for value in tree:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _as_list(layer):
    return layer if isinstance(layer, list) else [layer]


def tshark_pdus(name: str, pcap: Path, port: int) -> dict:
    """{(stream, direction): [fields of each PDU]} from tshark's own dissection."""
    run = subprocess.run(["tshark", "-r", str(pcap), *TSHARK_ARGS[name](port), "-T", "json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out: dict = {}
    for packet in json.loads(run.stdout):
        layers = packet["_source"]["layers"]
        if "_ws.malformed" in layers:
            # tshark 4.0 knows the Kafka headers of every version but not the newest API
            # bodies (e.g. Metadata v12): it flags those bodies, after the header fields.
            assert name == "kafka" and "Unsupported" in json.dumps(layers.get("kafka")), layers
        if name == "modbus":
            if "mbtcp" not in layers:
                continue
            pdus = []
            for mbtcp, modbus in zip(_as_list(layers["mbtcp"]), _as_list(layers["modbus"])):
                exc = _find(modbus, "modbus.exception_code")
                pdus.append({
                    "message_type": "Error" if exc is not None else None,
                    "request_id": int(mbtcp["mbtcp.trans_id"]),
                    "keys": {"unit_id": mbtcp["mbtcp.unit_id"], "function_code": _find(modbus, "modbus.func_code")},
                })
        elif name == "kafka":
            if "kafka" not in layers:
                continue
            pdus = []
            for pdu in _as_list(layers["kafka"]):
                keys = {}
                if "kafka.request_key" in pdu:
                    keys = {"api_key": pdu["kafka.request_key"], "api_version": pdu["kafka.request.version"]}
                    if pdu["kafka.client_id"] != "[ Null ]":
                        keys["client_id"] = pdu["kafka.client_id"]
                pdus.append({"message_type": None, "request_id": int(pdu["kafka.correlation_id"]) & U64,
                             "keys": keys})
        elif name == "mqtt":
            if "mqtt" not in layers:
                continue
            pdus = []
            for pdu in _as_list(layers["mqtt"]):
                ptype = int(_find(pdu, "mqtt.msgtype"))
                keys = {"packet_type": str(ptype)}
                # tshark shows an empty client id as "", an empty topic as no field
                if ptype == 1 and _find(pdu, "mqtt.clientid") is not None:
                    keys["client_id"] = _find(pdu, "mqtt.clientid")
                if ptype == 3 and _find(pdu, "mqtt.topic") is not None:  # also SUBSCRIBE's filter: PUBLISH's here
                    keys["topic"] = _find(pdu, "mqtt.topic")
                # protocols/mqtt.py has no request id (0 on every frame), so mqtt.msgid is not compared.
                pdus.append({"message_type": None, "request_id": 0, "keys": keys})
        else:
            if "thrift" not in layers:
                continue
            pdus = [{"message_type": THRIFT_TYPES[int(_find(pdu, "thrift.mtype"), 16)],
                     "request_id": int(_find(pdu, "thrift.seq_id")) & U64,
                     "keys": {"method": _find(pdu, "thrift.method")}}
                    for pdu in _as_list(layers["thrift"])]
        tcp = layers["tcp"]
        direction = "response" if int(tcp["tcp.srcport"]) == port else "request"
        out.setdefault((int(tcp["tcp.stream"]), direction), []).extend(pdus)
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("name", DISSECTED)
def test_corpus_routing_keys_equal_tshark_dissection(protos, name):
    from codecgen.replay.tcp import read_streams

    port, conns = corpus(name)
    pcap = CORPUS / name / "capture.pcap"
    theirs = tshark_pdus(name, pcap, port)
    module = pyb.load(protos[name])
    streams = read_streams(str(pcap), port)
    assert len(streams) == len(conns)
    compared = 0
    for stream in streams:
        for direction, data in (("request", stream.c2s.data), ("response", stream.s2c.data)):
            frames, held, error = module.decode_all(data, direction)
            assert error is None and held == 0
            ours = [f.as_json() for f in frames]
            them = theirs.get((stream.index, direction), [])
            assert len(ours) == len(them), (name, stream.index, direction)
            for mine, other in zip(ours, them):
                assert mine["request_id"] == other["request_id"]
                assert mine["metadata"] == {**other["keys"], **mark(name, direction)}
                if other["message_type"] is not None:
                    assert mine["message_type"] == other["message_type"]
                elif name == "modbus":
                    assert mine["message_type"] != "Error"
                compared += 1
    assert compared == sum(len(c["expected"]) for c in conns)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
def test_empty_routing_fields_are_published_as_tshark_shows_them(protos, tmp_path):
    """MQTT CONNECT with an empty client id, PUBLISH with an empty and a non-empty topic: tshark
    shows mqtt.clientid "" but no mqtt.topic; the reference codec publishes client_id "" (the
    spec's Key(..., publish_empty=True)) and no topic key (an empty string field publishes none)."""
    from scapy.all import IP, TCP, Ether, wrpcap

    def publish(topic: bytes) -> bytes:
        rest = len(topic).to_bytes(2, "big") + topic + b"payload"
        return bytes([0x30, len(rest)]) + rest

    connect_rest = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
    pdus = [bytes([0x10, len(connect_rest)]) + connect_rest, publish(b""), publish(b"a/b")]
    data = b"".join(pdus)
    c, srv, port = "10.0.0.1", "10.0.0.2", 1883
    packets = [Ether() / IP(src=c, dst=srv) / TCP(sport=40000, dport=port, flags="S", seq=99),
               Ether() / IP(src=srv, dst=c) / TCP(sport=port, dport=40000, flags="SA", seq=499, ack=100)]
    seq = 100
    for pdu in pdus:  # one PDU a segment: tshark's JSON repeats the "mqtt" key for PDUs sharing one
        packets.append(Ether() / IP(src=c, dst=srv) / TCP(sport=40000, dport=port, flags="PA", seq=seq, ack=500) / pdu)
        seq += len(pdu)
    pcap = tmp_path / "empty.pcap"
    wrpcap(str(pcap), packets)
    theirs = [pdu["keys"] for pdu in tshark_pdus("mqtt", pcap, port)[(0, "request")]]
    frames, held, error = pyb.load(protos["mqtt"]).decode_all(data, "request")
    assert error is None and held == 0
    ours = [f.as_json()["metadata"] for f in frames]
    assert theirs == [{"packet_type": "1", "client_id": ""}, {"packet_type": "3"},
                      {"packet_type": "3", "topic": "a/b"}]
    assert ours == [{**keys, **mark("mqtt", "request")} for keys in theirs]


# --------------------------------------------------------------------------- live traffic

@pytest.mark.parametrize("name", PROTOCOLS)
def test_live_library_traffic_decodes(protos, natives, name):
    if name == "mqtt" and shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    node_module = {"bolt": "sofa-bolt-node", "tars": "@tars/rpc"}.get(name)
    if node_module and not peers.node_available(node_module):
        pytest.fail(f"{node_module} is not installed: npm ci --prefix tests/node", pytrace=False)
    server, traffic = peers.PEERS[name]
    with server() as port, peers.recording(port) as rec:
        expected = traffic(rec.port)
        recorded = rec.wait(len(expected))
    conns = [{"request": bytes(c.c2s), "response": bytes(c.s2c), "expected": e}
             for c, e in zip(recorded, expected)]
    for engine in ENGINES:
        assert check_streams(protos, natives, name, conns, engine) == sum(len(e) for e in expected)


# --------------------------------------------------------------------------- error replies

@contextmanager
def error_responder(proto, reply):
    """A server on 127.0.0.1 that cuts the client's bytes into request frames with our
    codec and answers each with ``reply(frame)``.  On exit it closes every connection and
    joins its threads, so no reply (a native codec call) outlives the test."""
    module = pyb.load(proto)
    listener = socket.socket()
    listener.bind((peers.LOCALHOST, 0))
    listener.listen(4)
    seen, conns, threads = [], [], []

    def handle(conn):
        codec, buf = module.Codec(), bytearray()
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while True:
                    md = codec.decode(buf, "request")
                    if md is None:
                        break
                    seen.append(md)
                    try:
                        conn.sendall(reply(md.frame))
                    except OSError:
                        return

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            thread = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        except OSError:
            pass
        listener.close()
        acceptor.join(5)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5)


def on_error(protos, natives, name, engine, error_type, message):
    if engine == "cpp":
        return lambda frame: natives(name).on_error(frame, "request", int(error_type), message)
    module = pyb.load(protos[name])

    def reply(frame):
        codec = module.Codec()
        md = codec.decode(bytearray(frame), "request")
        return codec.on_error(md, int(error_type), message)

    return reply


ERRORS = [ErrorType.RouteNotFound, ErrorType.ClusterNotFound, ErrorType.NoHealthyUpstream,
          ErrorType.Unspecified]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type", ERRORS, ids=lambda e: e.name)
def test_thrift_error_reply_is_a_tapplicationexception(protos, natives, engine, error_type):
    _, call, TApplicationException, _ = peers._thrift()
    message = f"codecgen: {error_type.name}"
    with error_responder(protos["thrift"], on_error(protos, natives, "thrift", engine, error_type, message)) as (port, seen):
        for service, seqid in ((None, 41), ("Calc", -2)):
            prot, trans = peers.thrift_client(port, service)
            try:
                with pytest.raises(TApplicationException) as info:
                    call(prot, "add", seqid, a=1, b=2)
                # The client is still in sync: a second call on the connection works the same way.
                with pytest.raises(TApplicationException):
                    call(prot, "echo", seqid + 1, text="again")
            finally:
                trans.close()
            want = TApplicationException.UNKNOWN_METHOD if error_type == ErrorType.RouteNotFound \
                else TApplicationException.INTERNAL_ERROR
            assert info.value.type == want
            assert info.value.message == message
    assert [md.strings[b"method"] for md in seen] == [b"add", b"echo", b"Calc:add", b"Calc:echo"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type", ERRORS, ids=lambda e: e.name)
def test_modbus_error_reply_is_a_gateway_exception(protos, natives, engine, error_type):
    reply = on_error(protos, natives, "modbus", engine, error_type, "unused")
    with error_responder(protos["modbus"], reply) as (port, seen):
        client = peers.modbus_client(port, retries=0, timeout=3)
        try:
            rsp = client.read_holding_registers(4, count=2, device_id=17)
            rsp2 = client.write_coil(1, True, device_id=3)
        finally:
            client.close()
    want = 0x0A if error_type in (ErrorType.RouteNotFound, ErrorType.ClusterNotFound) else 0x0B
    assert rsp.isError() and rsp.exception_code == want
    assert rsp.function_code == 0x83 and rsp.dev_id == 17
    assert rsp2.isError() and rsp2.exception_code == want and rsp2.function_code == 0x85 and rsp2.dev_id == 3
    assert len(seen) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_kafka_error_reply_carries_the_correlation_id(protos, natives, engine):
    import kafka.errors as Errors
    from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest
    from kafka.protocol.parser import KafkaProtocol

    reply = on_error(protos, natives, "kafka", engine, ErrorType.RouteNotFound, "no route")
    requests = [(7, ApiVersionsRequest[3](client_software_name="k", client_software_version="1")),  # header v0
                (8, ApiVersionsRequest[0]()),
                (2**31 - 1, MetadataRequest[1](topics=None)),  # response header v0
                (9, MetadataRequest[12](topics=None, allow_auto_topic_creation=False,  # header v1
                                        include_topic_authorized_operations=False))]
    with error_responder(protos["kafka"], reply) as (port, seen):
        for correlation_id, request in requests:
            # After a protocol error kafka-python closes the connection: one per request.
            with socket.create_connection((peers.LOCALHOST, port), timeout=5) as sock:
                proto = KafkaProtocol(client_id="codecgen-kafka")
                # The parser reads our frame, matches the correlation id (a mismatch would be
                # CorrelationIdError), then finds no API body: the request fails at once.
                with pytest.raises(Errors.KafkaProtocolError, match="Unable to decode response"):
                    peers.kafka_exchange(sock, proto, request, correlation_id)
    assert [md.request_id for md in seen] == [cid for cid, _ in requests]


def test_kafka_parser_would_refuse_a_wrong_correlation_id(protos):
    """The control for the test above: the same reply with another id is refused as such."""
    import kafka.errors as Errors
    from kafka.protocol.metadata import ApiVersionsRequest
    from kafka.protocol.parser import KafkaProtocol

    module = pyb.load(protos["kafka"])
    proto = KafkaProtocol(client_id="x")
    cid = proto.send_request(ApiVersionsRequest[3](client_software_name="k", client_software_version="1"))
    request = proto.send_bytes()
    codec = module.Codec()
    md = codec.decode(bytearray(request), "request")
    assert md.request_id == cid
    md.request_id = cid + 1
    with pytest.raises(Errors.CorrelationIdError):
        proto.receive_bytes(codec.on_error(md, 0, "x"))


@pytest.mark.parametrize("engine", ENGINES)
def test_mqtt_error_reply_is_a_refused_connack_and_pingreq_gets_pingresp(protos, natives, engine):
    import paho.mqtt.client as mqtt

    module = pyb.load(protos["mqtt"])
    error = on_error(protos, natives, "mqtt", engine, ErrorType.NoHealthyUpstream, "unused")

    def reply(frame):
        md = module.Codec().decode(bytearray(frame), "request")
        if md.message_type == "Heartbeat":  # what the framework does for a downstream heartbeat
            return natives("mqtt").heartbeat(frame, "request") if engine == "cpp" else module.Codec().heartbeat(md)
        if md.strings.get(b"client_id") == b"pinger":
            return b"\x20\x02\x00\x00"  # CONNACK accepted, so that the client goes on to ping
        return error(frame)

    results = {}
    with error_responder(protos["mqtt"], reply) as (port, seen):
        for client_id in ("refused", "pinger"):
            logs = []
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
            client.on_log = lambda _c, _u, _l, buf: logs.append(buf)
            client.on_connect = lambda _c, _u, _f, rc, _p, cid=client_id: results.setdefault(cid, rc)
            client.connect(peers.LOCALHOST, port)
            if client_id == "pinger":
                client._send_pingreq()
            for _ in range(20):
                client.loop(timeout=0.05)
                if client_id in results and (client_id == "refused" or "Received PINGRESP" in logs):
                    break
            client.disconnect()
            if client_id == "refused":
                assert "Received CONNACK (0, 3)" in logs, logs
            else:
                assert "Received PINGRESP" in logs, logs
    assert results["refused"].is_failure and results["refused"].getName() == "Server unavailable"
    mqtt_mark = {k.encode(): v.encode() for k, v in mark("mqtt", "request").items()}
    assert seen[0].strings == {b"packet_type": b"1", b"client_id": b"refused", **mqtt_mark}
    assert seen[1].strings == {b"packet_type": b"1", b"client_id": b"pinger", **mqtt_mark}
    assert seen[2].message_type == "Heartbeat"


# --------------------------------------------------------------------------- thrift THeader

def _read_framed(sock: socket.socket) -> bytes:
    """One length-prefixed frame (THeader's LENGTH u32 and what it counts)."""
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            assert chunk, "the server closed the connection"
            out += chunk
        return out

    head = exactly(4)
    return head + exactly(int.from_bytes(head, "big"))


def _encoder(protos, natives, name, engine, mutation):
    module = pyb.load(protos[name])

    def encode(frame: bytes) -> bytes:
        if engine == "cpp":
            return natives(name).encode(frame, "request", mutation, "request")
        codec = module.Codec()
        md = codec.decode(bytearray(frame), "request")
        return bytes(codec.encode(md, mutation, frame))

    return encode


@pytest.mark.parametrize("engine", ENGINES)
def test_theader_mutation_reaches_the_real_server(protos, natives, engine):
    """Our encode (each engine) adds an info header, replaces one whose name differs in case and
    drops a reserved one; Apache's THeader server reads them with the library's own parser, and
    echoes them back to the library's client."""
    _, call, _, _ = peers._thrift()
    mutation = {"x-added": "by-codecgen", "user": "bob", "x-envoy-peer-metadata": "dropped"}
    encode = _encoder(protos, natives, "thriftheader", engine, mutation)
    received, originals, sent = [], [], []
    with peers.theader_server(received) as upstream_port, \
            socket.create_connection((peers.LOCALHOST, upstream_port), timeout=5) as upstream:
        def forward(frame: bytes) -> bytes:
            originals.append(frame)
            sent.append(encode(frame))
            upstream.sendall(sent[-1])
            return b"" if frame[frame.index(b"\x80\x01") + 3] == 4 else _read_framed(upstream)  # ONEWAY: no reply

        with error_responder(protos["thriftheader"], forward) as (port, _):
            for service in (None, "Calc"):
                prot, header = peers.theader_client(port, service)
                try:
                    header.set_header(b"User", b"alice")
                    header.set_header(b"tenant", b"t1")
                    assert call(prot, "add", 5, a=40, b=2) == 42
                    assert header.get_headers() == {b"User": b"bob", b"tenant": b"t1", b"x-added": b"by-codecgen",
                                                     **peers.SERVED_BY_BYTES}
                    assert call(prot, "ping", 6) is None  # no info headers at all: a block is added
                    header.set_header(b"x-added", b"by-codecgen")  # already as the mutation wants it
                    header.set_header(b"user", b"bob")
                    call(prot, "notify", 7, oneway=True, text="x")
                    assert call(prot, "echo", 8, text="still in sync") == "still in sync"
                finally:
                    header.trans.close()
    want = [{"User": "bob", "tenant": "t1", "x-added": "by-codecgen"}, {"user": "bob", "x-added": "by-codecgen"},
            {"x-added": "by-codecgen", "user": "bob"}, {"user": "bob", "x-added": "by-codecgen"}]
    assert received == want * 2
    # The headers already as the mutation wants them: the frame goes out as the client sent it.
    assert sent[2] == originals[2] and sent[6] == originals[6]
    assert all(len(s) > len(o) for i, (s, o) in enumerate(zip(sent, originals)) if i % 4 != 2)
    for check in ENGINES:
        frames, held, error = decode(protos, natives, "thriftheader", b"".join(sent), "request", check)
        assert error is None and held == 0
        assert [f["metadata"].get("x-added") for f in frames] == ["by-codecgen"] * 8


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type", ERRORS, ids=lambda e: e.name)
def test_theader_error_reply_is_a_tapplicationexception(protos, natives, engine, error_type):
    _, call, TApplicationException, _ = peers._thrift()
    message = f"codecgen: {error_type.name} \u00e9"
    reply = on_error(protos, natives, "thriftheader", engine, error_type, message)
    with error_responder(protos["thriftheader"], reply) as (port, seen):
        for service, seqid in ((None, 41), ("Calc", -2)):
            prot, header = peers.theader_client(port, service)
            try:
                header.set_header(b"user", b"alice")
                with pytest.raises(TApplicationException) as info:
                    call(prot, "add", seqid, a=1, b=2)
                assert header.trans.sequence_id == seqid  # the header's seqid echoes the request's too
                with pytest.raises(TApplicationException):  # still in sync
                    call(prot, "echo", seqid + 1, text="again")
            finally:
                header.trans.close()
            want = TApplicationException.UNKNOWN_METHOD if error_type == ErrorType.RouteNotFound \
                else TApplicationException.INTERNAL_ERROR
            assert info.value.type == want
            assert info.value.message == message
    assert [md.strings[b"method"] for md in seen] == [b"add", b"echo", b"Calc:add", b"Calc:echo"]


NODE_PEERS = ROOT / "tests" / "node"


@contextmanager
def node_theader_server():
    """Apache Thrift's Node.js THeader server (tests/node/theader_server.js) on 127.0.0.1; yields
    (port, lines) where lines collects what it printed per request."""
    if shutil.which("node") is None or not (NODE_PEERS / "node_modules" / "thrift").is_dir():
        pytest.fail("the Node.js THeader peer is not installed: run scripts/install.sh "
                    "(apt nodejs npm; npm ci --prefix tests/node)", pytrace=False)
    proc = subprocess.Popen(["node", str(NODE_PEERS / "theader_server.js")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=NODE_PEERS)
    lines = []
    try:
        port = json.loads(proc.stdout.readline())["port"]
        reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stdout), daemon=True)
        reader.start()
        yield port, lines
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)
        assert not proc.stderr.read(), "the Node.js server reported an error"


@pytest.mark.parametrize("engine", ENGINES)
def test_theader_mutation_reaches_the_nodejs_server_and_its_replies_decode(protos, natives, engine):
    """A second THeader implementation: Node.js's reader takes our mutated info headers (the
    appended block replaces under the client's spelling), and both engines decode the replies
    its writer produces (flags 0, its own padding)."""
    _, call, _, _ = peers._thrift()
    mutation = {"x-added": "by-codecgen", "user": "bob"}
    encode = _encoder(protos, natives, "thriftheader", engine, mutation)
    replies = []
    with node_theader_server() as (upstream_port, received), \
            socket.create_connection((peers.LOCALHOST, upstream_port), timeout=5) as upstream:
        def forward(frame: bytes) -> bytes:
            upstream.sendall(encode(frame))
            replies.append(_read_framed(upstream))
            return replies[-1]

        with error_responder(protos["thriftheader"], forward) as (port, _):
            prot, header = peers.theader_client(port)
            try:
                header.set_header(b"User", b"alice")
                header.set_header(b"tenant", "t\u00e9st".encode())
                assert call(prot, "ping", 31) is None
                assert header.get_headers() == {b"User": b"bob", b"tenant": "t\u00e9st".encode(),
                                                b"x-added": b"by-codecgen", b"served-by": b"thrift-nodejs"}
                assert call(prot, "ping", -32) is None  # no info headers of its own
            finally:
                header.trans.close()
    assert [(r["method"], r["seqid"], r["headers"]) for r in received] == [
        ("ping", 31, {"User": "bob", "tenant": "t\u00e9st", "x-added": "by-codecgen"}),
        ("ping", -32, {"user": "bob", "x-added": "by-codecgen"}),
    ]
    for check in ENGINES:
        frames, held, error = decode(protos, natives, "thriftheader", b"".join(replies), "response", check)
        assert error is None and held == 0
        assert [(f["message_type"], f["request_id"] & 0xFFFFFFFF, f["metadata"]["served-by"]) for f in frames] == [
            ("Response", 31, "thrift-nodejs"), ("Response", (-32) & 0xFFFFFFFF, "thrift-nodejs")]
