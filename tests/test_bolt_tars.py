"""protocols/bolt.py against sofa-bolt-node (tests/node/bolt_peer.js) and protocols/tars.py
against @tars/rpc and @tars/stream (tests/node/tars_peer.js), npm packages, over 127.0.0.1.

The corpora (tests/corpus/{bolt,tars}/) and live traffic are checked in
tests/test_protocols_real.py. Here: a mutation by our encode (each engine) is read by the
library's server with its own parser; our error replies (and Bolt's heartbeat replies), each
engine, are what the library's client takes as the failed call (and the heartbeat ack); the
server's replies to mutated requests decode on both engines.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from codecgen.backends import python as pyb
from codecgen.frontend import load
from codecgen.ir import CODEC_ID_KEY
from codecgen.naming import codec_name
from codecgen.ir import ErrorType

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("python", "cpp")
SERVICE = "com.example.EchoService:1.0"


def _peers():
    spec = importlib.util.spec_from_file_location("codecgen_bolt_peers", ROOT / "tests" / "corpus" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peers = _peers()
needs_bolt = pytest.mark.skipif(not peers.node_available("sofa-bolt-node"),
                                reason="sofa-bolt-node is not installed: npm ci --prefix tests/node")
needs_tars = pytest.mark.skipif(not peers.node_available("@tars/rpc"),
                                reason="@tars/rpc is not installed: npm ci --prefix tests/node")


def _spec_and_codec(name):
    from codecgen.engines.native import native_codec

    spec = load(ROOT / "protocols" / f"{name}.py")
    codec = native_codec(spec)
    return spec, codec


@pytest.fixture(scope="module")
def bolt():
    spec, codec = _spec_and_codec("bolt")
    yield spec, codec
    codec.close()


@pytest.fixture(scope="module")
def tars():
    spec, codec = _spec_and_codec("tars")
    yield spec, codec
    codec.close()


def split(proto, data: bytes, direction: str):
    """Frames (metadata, bytes) of one direction's bytes, cut by our reference codec."""
    codec, buf, out = pyb.load(proto).Codec(), bytearray(data), []
    while True:
        md = codec.decode(buf, direction)
        if md is None:
            assert not buf, "bytes left over"
            return out
        out.append(md)


def decode(proto, native, data: bytes, direction: str, engine: str) -> list[tuple]:
    """(message type, request id) of each frame, as ``codecgen decode --engine`` reads them."""
    from codecgen.engines import Engine

    result = Engine(proto, engine, native=native if engine == "cpp" else None).decode(data, direction)
    assert result.error is None and result.held == 0
    return [(f["message_type"], f["request_id"]) for f in result.frames]


def exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "the server closed the connection"
        out += chunk
    return out


def read_bolt(sock: socket.socket) -> bytes:
    """One Bolt v1 response: 20 bytes of fixed header, then class, header and content."""
    head = exactly(sock, 20)
    rest = int.from_bytes(head[12:14], "big") + int.from_bytes(head[14:16], "big") + int.from_bytes(head[16:20], "big")
    return head + exactly(sock, rest)


def read_tars(sock: socket.socket) -> bytes:
    """One Tars frame: its u32 length counts itself."""
    head = exactly(sock, 4)
    return head + exactly(sock, int.from_bytes(head, "big") - 4)


@contextmanager
def responder(proto, reply):
    """A server on 127.0.0.1 that cuts the client's bytes into requests with our reference
    codec and answers each with ``reply(metadata)``."""
    module = pyb.load(proto)
    listener = socket.socket()
    listener.bind((peers.LOCALHOST, 0))
    listener.listen(4)
    seen, threads = [], []

    def handle(conn):
        codec, buf = module.Codec(), bytearray()
        with conn:
            while data := conn.recv(65536):
                buf += data
                while (md := codec.decode(buf, "request")) is not None:
                    seen.append(md)
                    conn.sendall(reply(md))

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        listener.close()
        acceptor.join(5)
        for t in threads:
            t.join(5)


def library_requests(proto) -> list:
    """The requests the library's client wrote in the captured corpus (first connection)."""
    return split(proto, (ROOT / "tests" / "corpus" / proto.name / "conn0.c2s.bin").read_bytes(), "request")


def encoder(proto, native, engine, mutation):
    """Our encode of a decoded request (each engine), as the proxy forwards it upstream."""
    codec = pyb.load(proto).Codec()

    def encode(md) -> bytes:
        frame = bytes(md.frame)
        if engine == "cpp":
            return native.encode(frame, "request", mutation, "request")
        return bytes(codec.encode(md, mutation, frame))

    return encode


def replier(proto, native, engine, error_type, message):
    """The proxy's answer to a downstream request (each engine): the heartbeat reply for a
    heartbeat, else the codec's error reply for ``error_type``."""
    codec = pyb.load(proto).Codec()

    def reply(md) -> bytes:
        frame = bytes(md.frame)
        if md.message_type == "Heartbeat":
            return native.heartbeat(frame, "request") if engine == "cpp" else codec.heartbeat(md)
        if engine == "cpp":
            return native.on_error(frame, "request", int(error_type), message)
        return codec.on_error(md, int(error_type), message)

    return reply


MUTATION = {"x-added": "by-codecgen", "x-tenant": "t2", "user": "bob", "x-envoy-peer-metadata": "dropped"}


# --------------------------------------------------------------------------- bolt


@needs_bolt
@pytest.mark.parametrize("engine", ENGINES)
def test_bolt_mutation_is_read_by_the_library_server(bolt, engine):
    """Our encode adds a key, replaces one under the client's spelling (X-Tenant) and one in
    place (user), and drops a reserved one; sofa-bolt-node's server parses the header (protobuf
    calls) or skips it by its new length (hessian2 calls) and answers every call."""
    proto, native = bolt
    encode = encoder(proto, native, engine, MUTATION)
    lines, replies, sent = [], [], []
    with peers.bolt_server(lines) as port, socket.create_connection((peers.LOCALHOST, port), timeout=5) as upstream:
        for md in library_requests(proto):
            frame = bytes(md.frame)
            # A heartbeat is answered by the proxy itself; sent here as it is.
            out = frame if md.message_type == "Heartbeat" else encode(md)
            sent.append((md, frame, out))
            upstream.sendall(out)
            if md.message_type != "Oneway":
                replies.append(read_bolt(upstream))
    requests = [line for line in lines if line["packetType"] == "request"]
    assert [r["packetId"] for r in requests] == [1, 3, 4, 5, 6, 7, 1073741823]
    base = {"service": SERVICE, "sofa_head_target_service": SERVICE, "sofa_head_target_app": "echo-app",
            "x-added": "by-codecgen", "user": "bob"}
    want = {3: {**base, "sofa_head_method_name": "echo", "X-Tenant": "t2"},
            4: {**base, "sofa_head_method_name": "echo", "x-tenant": "t2"},
            5: {**base, "sofa_head_method_name": "notify", "x-tenant": "t2"},
            6: {**base, "sofa_head_method_name": "fail", "x-tenant": "t2"},
            1073741823: {**base, "sofa_head_method_name": "echo", "x-tenant": "t2", "x-long": "v" * 300}}
    for r in requests:
        assert r["serverSignature"] == SERVICE and r["timeout"] == 3000
        assert r["headers"] == want.get(r["packetId"]), r["packetId"]  # hessian2: the library skips the header
    assert all(len(out) > len(frame) for md, frame, out in sent if md.message_type != "Heartbeat")
    for check in ENGINES:
        assert decode(proto, native, b"".join(replies), "response", check) == [
            ("Response", 1), ("Heartbeat", 2), ("Response", 3), ("Response", 4), ("Error", 6), ("Response", 7),
            ("Response", 1073741823)]


ERRORS = [(ErrorType.RouteNotFound, 6), (ErrorType.ClusterNotFound, 6), (ErrorType.OverLimit, 4),
          (ErrorType.Unspecified, 2)]


@needs_bolt
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type,status", ERRORS, ids=lambda e: getattr(e, "name", str(e)))
def test_bolt_error_and_heartbeat_replies_are_understood_by_the_library_client(bolt, engine, error_type, status):
    proto, native = bolt
    answer, written = replier(proto, native, engine, error_type, "codecgen: no route"), []

    def reply(md):
        written.append(bytes(answer(md)))
        return written[-1]

    with responder(proto, reply) as (port, seen):
        results = peers.node_client("bolt_peer.js", "call", port)
    assert [(r["id"], r["got"]) for r in results] == [
        (7, {"packetType": "response",
             "error": "Server exception when invoke with callback.Please check the server log!"}),
        (8, {"packetType": "heartbeat_ack"}),
    ]
    assert [md.message_type for md in seen] == ["Request", "Heartbeat"]
    error, ack = written
    # type RESPONSE, cmdcode RPC_RESPONSE, the request id, and the status for the error type
    assert error[1] == 0 and error[2:4] == b"\x00\x02" and error[5:9] == (7).to_bytes(4, "big")
    assert int.from_bytes(error[10:12], "big") == status
    assert ack[:4] == b"\x01\x00\x00\x00" and ack[5:9] == (8).to_bytes(4, "big") and ack[10:12] == b"\x00\x00"


# --------------------------------------------------------------------------- tars

TARS_SERVANT = "Test.EchoServer.EchoObj"


@needs_tars
@pytest.mark.parametrize("engine", ENGINES)
def test_tars_mutation_is_read_by_the_library_server(tars, engine):
    """Our encode re-encodes the context map: @tars/rpc's server reads the added key, the value
    replaced under the client's spelling (X-Tenant) and in place (user), and echoes the context
    in its responses, which decode on both engines with the keys it read."""
    proto, native = tars
    encode = encoder(proto, native, engine, MUTATION)
    lines, replies, sent = [], [], []
    with peers.tars_server(lines) as port, socket.create_connection((peers.LOCALHOST, port), timeout=5) as upstream:
        for md in library_requests(proto):
            sent.append((bytes(md.frame), encode(md)))
            upstream.sendall(sent[-1][1])
            if md.message_type != "Oneway":
                replies.append(read_tars(upstream))
    base = {"x-added": "by-codecgen", "user": "bob"}
    assert [(line["func"], line["requestId"], line["context"]) for line in lines] == [
        ("echo", 2, {**base, "X-Tenant": "t2"}),
        ("echo", 3, {**base, "x-tenant": "t2"}),
        ("notify", 4, {**base, "x-tenant": "t2"}),
        ("fail", 5, {**base, "x-tenant": "t2"}),
        ("nosuchfunc", 6, {**base, "x-tenant": "t2"}),
        ("echo", 7, {**base, "x-tenant": "t2", "x-long": "w" * 300}),
    ]
    assert all(len(out) > len(frame) for frame, out in sent)
    for check in ENGINES:
        assert decode(proto, native, b"".join(replies), "response", check) == [
            ("Response", 2), ("Response", 3), ("Error", 5), ("Error", 6), ("Response", 7)]
    frames = split(proto, b"".join(replies), "response")
    assert [md.strings.get(b"x-added") for md in frames] == [b"by-codecgen", b"by-codecgen", None, None, b"by-codecgen"]


TARS_ERRORS = [(ErrorType.RouteNotFound, -4), (ErrorType.ClusterNotFound, -4), (ErrorType.OverLimit, -9),
               (ErrorType.Unspecified, -99)]


@needs_tars
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type,ret", TARS_ERRORS, ids=lambda e: getattr(e, "name", str(e)))
def test_tars_error_reply_is_understood_by_the_library_client(tars, engine, error_type, ret):
    """@tars/rpc's client matches our ResponsePacket to its call by iRequestId (a wrong id would
    leave the call to time out) and fails the call with our iRet and message."""
    proto, native = tars
    message = f"codecgen: {error_type.name} \u00e9"
    with responder(proto, replier(proto, native, engine, error_type, message)) as (port, seen):
        results = peers.node_client("tars_peer.js", "call", port)
    assert [(r["func"], r["ok"], r["ret"], r["desc"]) for r in results] == [("echo", False, ret, message)] * 2
    assert [md.request_id for md in seen] == [r["requestId"] for r in results]
    assert [md.strings[b"servant"] for md in seen] == [TARS_SERVANT.encode()] * 2


def test_tars_decode_and_mutation_do_not_copy_sbuffer():
    """A request with a 200 kB sBuffer: decode reads the fields around it through small
    windows, and a mutation re-encodes the context and moves sBuffer."""
    from codecgen.ext.tars.tars_packet import encode_bytes, encode_int, encode_map, encode_string
    from codecgen.engines.native import native_codec

    packet = (encode_int(1, 1) + encode_int(2, 0) + encode_int(3, 0) + encode_int(4, 77)
              + encode_string(5, TARS_SERVANT.encode()) + encode_string(6, b"upload") + encode_bytes(7, bytes(200_000))
              + encode_int(8, 3000) + encode_map(9, [(b"user", b"alice")]) + encode_map(10, []))
    frame = (len(packet) + 4).to_bytes(4, "big") + packet
    with native_codec(load(ROOT / "protocols" / "tars.py"), sanitize=False) as codec:
        codec.reset_bytes_copied()
        result = codec.decode_stream(frame, [], "request")
        assert result.error is None and result.frames[0].strings == {"servant": TARS_SERVANT, "func": "upload",
                                                                      "user": "alice", CODEC_ID_KEY: codec_name("tars")}
        # The harness copies the frame in and out once each; the codec's own reads are small.
        assert codec.bytes_copied() < 2 * len(frame) + 4096, codec.bytes_copied()
        codec.reset_bytes_copied()
        out = codec.encode(frame, "request", {"x-added": "1", "user": "bob"}, "request")
        assert codec.bytes_copied() < 2 * len(frame) + 8192, codec.bytes_copied()
    want = packet.replace(encode_map(9, [(b"user", b"alice")]), encode_map(9, [(b"user", b"bob"), (b"x-added", b"1")]))
    assert out == (len(want) + 4).to_bytes(4, "big") + want
