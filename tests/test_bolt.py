"""protocols/bolt.py against sofa-bolt-node (npm, tests/node/bolt_peer.js), over 127.0.0.1.

The corpus (tests/corpus/bolt/) and live traffic are checked in tests/test_protocols_real.py.
Here: a mutation by our encode (each engine) is read by the library's server with its own header
parser; our error replies and heartbeat replies (each engine) are what the library's client
takes as the failed call and as the heartbeat ack; the server's replies to mutated requests
decode on both engines.
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
pytestmark = pytest.mark.skipif(not peers.node_available("sofa-bolt-node"),
                                reason="sofa-bolt-node is not installed: npm ci --prefix tests/node")


@pytest.fixture(scope="module")
def proto():
    return load(ROOT / "protocols" / "bolt.py")


@pytest.fixture(scope="module")
def native(proto):
    from codecgen.verify.native import native_codec

    codec = native_codec(proto)
    yield codec
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
    from codecgen.replay.decode import Engine

    runner = Engine.__new__(Engine)
    runner.proto, runner.name = proto, engine
    runner._native = native if engine == "cpp" else None
    if engine == "python":
        runner._module = pyb.load(proto)
    result = runner.decode(data, direction)
    assert result.error is None and result.held == 0
    return [(f["message_type"], f["request_id"]) for _, f in result.frames]


def read_frame(sock: socket.socket) -> bytes:
    """One Bolt v1 response: 20 bytes of fixed header, then class, header and content."""
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            assert chunk, "the server closed the connection"
            out += chunk
        return out

    head = exactly(20)
    rest = int.from_bytes(head[12:14], "big") + int.from_bytes(head[14:16], "big") + int.from_bytes(head[16:20], "big")
    return head + exactly(rest)


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
    """The requests sofa-bolt-node's client wrote in the captured corpus (first connection)."""
    return split(proto, (ROOT / "tests" / "corpus" / "bolt" / "conn0.c2s.bin").read_bytes(), "request")


@pytest.mark.parametrize("engine", ENGINES)
def test_mutation_is_read_by_the_library_server(proto, native, engine):
    """Our encode adds a key, replaces one under the client's spelling (X-Tenant) and one in
    place (user), and drops a reserved one; sofa-bolt-node's server parses the header (protobuf
    calls) or skips it by its new length (hessian2 calls) and answers every call."""
    mutation = {"x-added": "by-codecgen", "x-tenant": "t2", "user": "bob", "x-envoy-peer-metadata": "dropped"}
    codec = pyb.load(proto).Codec()
    lines, replies, sent = [], [], []
    with peers.bolt_server(lines) as port, socket.create_connection((peers.LOCALHOST, port), timeout=5) as upstream:
        for md in library_requests(proto):
            frame = bytes(md.frame)
            if md.message_type == "Heartbeat":  # answered by the proxy itself; sent here as it is
                out = frame
            else:
                out = native.encode(frame, "request", mutation, "request") if engine == "cpp" \
                    else bytes(codec.encode(md, mutation, frame))
            sent.append((md, frame, out))
            upstream.sendall(out)
            if md.message_type != "Oneway":
                replies.append(read_frame(upstream))
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
        assert decode(proto, native, b"".join(replies), "response", check) == [("Response", 1), ("Heartbeat", 2), ("Response", 3), ("Response", 4), ("Error", 6),
                       ("Response", 7), ("Response", 1073741823)]


ERRORS = [(ErrorType.RouteNotFound, 6), (ErrorType.ClusterNotFound, 6), (ErrorType.OverLimit, 4),
          (ErrorType.Unspecified, 2)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("error_type,status", ERRORS, ids=lambda e: getattr(e, "name", str(e)))
def test_error_and_heartbeat_replies_are_understood_by_the_library_client(proto, native, engine, error_type,
                                                                          status):
    codec = pyb.load(proto).Codec()
    written = []

    def reply(md):
        if md.message_type == "Heartbeat":  # what the framework does for a downstream heartbeat
            out = native.heartbeat(bytes(md.frame), "request") if engine == "cpp" else codec.heartbeat(md)
        else:
            out = native.on_error(bytes(md.frame), "request", int(error_type), "codecgen: no route") \
                if engine == "cpp" else codec.on_error(md, int(error_type), "codecgen: no route")
        written.append(bytes(out))
        return bytes(out)

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
