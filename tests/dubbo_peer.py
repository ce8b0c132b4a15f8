"""A tiny Dubbo 2 provider and a recording proxy on 127.0.0.1, for tests/test_dubbo.py.

The client side is a real library: dubbo-ssl-python (module ``dubbo_ssl``), a Python 3 Dubbo
client with its own Hessian 2 encoder and decoder (see protocols/README.md for why this one).
The provider below is written here, but it reads every request body with that library's
Hessian 2 decoder (``dubbo_ssl.codec.decoder.Response``) and writes every result with its
encoder, so what it accepts and answers is what the library understands. It behaves like
Java's ``DubboCodec`` where the tests need it:

- ``sayHello(name)`` returns ``"hello <name>"``; ``attachments()`` returns the request's
  attachments map as the library decoded it, as JSON text (the library's encoder writes no
  maps): the proof that a mutation arrived;
- ``boom()`` answers status 20 with a business exception (result flag 0);
- ``missing()`` answers status 60 SERVICE_NOT_FOUND with a message string;
- a request whose dubbo version is in [2.0.2, 2.0.99] gets a result with attachments
  (flag 4 + {"dubbo": "2.0.2"}), as Java's server does;
- a heartbeat (event) request gets the heartbeat response ``22 14 ... 4e``.

``python tests/dubbo_peer.py`` rewrites the corpus in tests/corpus/dubbo/.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "dubbo"
INTERFACE = "org.apache.dubbo.demo.DemoService"


def read_frame(sock: socket.socket) -> bytes | None:
    """One whole Dubbo frame (header + body) or None at EOF."""
    header = _read_exactly(sock, 16)
    if header is None:
        return None
    (length,) = struct.unpack(">i", header[12:16])
    body = _read_exactly(sock, length)
    if body is None:
        return None
    return header + body


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _encode(value) -> bytes:
    """A Hessian 2 value written by the library's encoder."""
    from dubbo_ssl.codec.encoder import Request

    return bytes(b & 0xFF for b in Request({})._encode_single_value(value))


def _response(request_id: bytes, status: int, body: bytes, flag: int = 0x02) -> bytes:
    return b"\xda\xbb" + bytes((flag, status)) + request_id + struct.pack(">i", len(body)) + body


def decode_request(body: bytes) -> dict:
    """A request body read with the library's Hessian 2 decoder."""
    from dubbo_ssl.codec.decoder import Response as HessianInput

    from codecgen.ext.dubbo import parameter_count

    inp = HessianInput(bytearray(body))
    out = {"dubbo": inp.read_next(), "path": inp.read_next(), "version": inp.read_next(),
           "method": inp.read_next(), "descriptor": inp.read_next()}
    out["arguments"] = [inp.read_next() for _ in range(parameter_count(out["descriptor"].encode()))]
    out["attachments"] = inp.read_next()
    if inp.length() != 0:
        raise ValueError(f"{inp.length()} bytes left after the attachments")
    return out


def provider_reply(frame: bytes) -> bytes | None:
    """The provider's answer to one request frame (None for a one-way request)."""
    from dubbo_ssl.codec.encoder import Object

    flag, request_id = frame[2], frame[4:12]
    if flag & 0x20:  # event: a heartbeat
        return _response(request_id, 20, b"N", flag=0x22) if flag & 0x40 else None
    request = decode_request(frame[16:])
    method = request["method"]
    if method == "missing":
        return _response(request_id, 60, _encode(f"Service {request['path']} not found"))
    if method == "boom":
        trace = Object("java.lang.StackTraceElement", {"declaringClass": "com.example.Impl", "methodName": "boom",
                                                       "fileName": "Impl.java", "lineNumber": 42})
        error = Object("java.lang.RuntimeException", {"detailMessage": "boom", "stackTrace": [trace]})
        return _response(request_id, 20, b"\x90" + _encode(error))
    if method == "attachments":
        value = json.dumps(request["attachments"] or {}, sort_keys=True)
    elif method == "sayHello":
        value = "hello " + str(request["arguments"][0])
    else:
        value = f"{method}({', '.join(map(repr, request['arguments']))})"
    version = request["dubbo"] or ""
    if version.startswith("2.0.") and 2 <= _int(version[4:]) <= 99:  # Version.isSupportResponseAttachment
        return _response(request_id, 20, b"\x94" + _encode(value) + b"H" + _encode("dubbo") + _encode("2.0.2") + b"Z")
    return _response(request_id, 20, b"\x91" + _encode(value)) if flag & 0x40 else None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


class Peer:
    """A TCP server on 127.0.0.1 answering each frame with ``answer(frame) -> bytes | None``.

    Every connection's two directions are recorded as they passed (``streams``).
    """

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.streams: list[dict] = []
        self.errors: list[BaseException] = []
        self._stop = False
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            stream = {"c2s": bytearray(), "s2c": bytearray()}
            self.streams.append(stream)
            self._connections.append(conn)
            thread = threading.Thread(target=self._connection, args=(conn, stream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _connection(self, conn, stream):
        with conn:
            while True:
                try:
                    frame = read_frame(conn)
                    if frame is None or self._stop:
                        return
                    stream["c2s"] += frame
                    reply = self.answer(frame)
                    if reply:
                        stream["s2c"] += reply
                        conn.sendall(reply)
                except OSError:
                    return
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(exc)
                    return

    def close(self):
        """Stop serving: the library's connection is closed (it drops it from its pool, and
        stops sending it heartbeats), and no answer runs after this returns."""
        from dubbo_ssl.connection.connections import connection_pool

        conn = connection_pool._connection_pool.get(self.host)
        if conn is not None:
            conn.last_active = float("inf")  # never idle: no heartbeat races the close
        self._stop = True
        self.sock.close()
        for conn in self._connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=10)


class Forwarder:
    """Answers each frame by forwarding ``transform(frame)`` to ``upstream`` and returning its
    reply: a one-frame-at-a-time proxy (the library's calls are sequential)."""

    def __init__(self, upstream_port: int, transform):
        self.upstream = socket.create_connection(("127.0.0.1", upstream_port))
        self.transform = transform
        self.sent: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes) -> bytes | None:
        with self.lock:
            out = self.transform(frame)
            self.sent.append(out)
            self.upstream.sendall(out)
            if frame[2] & 0x80 and not frame[2] & 0x40:
                return None  # one-way
            return read_frame(self.upstream)


def client(host: str, dubbo_version: str = "2.4.10", group: str = "demo"):
    from dubbo_ssl.client import DubboClient

    return DubboClient(INTERFACE, group, version="1.0.0", dubbo_version=dubbo_version, host=host)


def has_heartbeat(stream: bytes) -> bool:
    """True when a recorded stream holds an event frame (read from the 16-byte headers)."""
    at = 0
    while at + 16 <= len(stream):
        if stream[at + 2] & 0x20:
            return True
        at += 16 + struct.unpack(">i", stream[at + 12:at + 16])[0]
    return False


def heartbeat_from_client(host: str, sent, timeout: float = 5.0) -> bool:
    """Make the library's connection to ``host`` send its heartbeat; True once ``sent()`` says
    it went out and the library counted the reply (its unanswered count is back to 0).

    The library counts unanswered heartbeats per host in ``client_heartbeats`` but never
    initializes the counter (its heartbeat thread hits a KeyError), so it is seeded here; then
    the connection is made to look idle for longer than TIMEOUT_IDLE.
    """
    from dubbo_ssl.common.constants import TIMEOUT_IDLE
    from dubbo_ssl.connection.connections import connection_pool

    connection_pool.client_heartbeats[host] = 0
    connection_pool._connection_pool[host].last_active = time.time() - TIMEOUT_IDLE - 1
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sent() and connection_pool.client_heartbeats.get(host) == 0:
            return True
        time.sleep(0.01)
    return False


# ---------------------------------------------------------------------------- the corpus


def capture() -> tuple[list[dict], list[dict]]:
    """One session of the library against the provider: (streams, expected frames).

    ``expected`` lists, per direction and in order, what each frame must decode to: the
    values come from what the test told the library to send, not from our codec.
    """
    from dubbo_ssl.codec.encoder import Object
    from dubbo_ssl.common import util

    peer = Peer(provider_reply)
    try:
        calls = [
            ("sayHello", ["world"], {"x-user": "alice"}, "2.4.10"),
            ("add", [1, 1 << 40, 2.5, True], None, "2.4.10"),
            ("save", [Object("com.example.User", {"name": "bob", "age": 7}), ["a", "b"]], {"X-Tenant": "t1"}, "2.4.10"),
            ("sayHello", ["\u00e9t\u00e9 \u4e16\u754c"], None, "2.4.10"),
            ("boom", [], None, "2.4.10"),
            ("missing", [], None, "2.4.10"),
            ("sayHello", ["attached"], None, "2.0.2"),
        ]
        expected_c2s, expected_s2c = [], []
        for method, args, context, version in calls:
            first_id = util.invoke_id  # the library's counter: the id this call takes
            try:
                client(peer.host, version).call(method, args, context=context, timeout=5)
            except Exception:  # noqa: BLE001 - boom, missing and the 2.0.2 result raise by design
                pass
            keys = {"interface": INTERFACE, "method": method, "path": INTERFACE, "version": "1.0.0",
                    "group": "demo", **(context or {})}
            expected_c2s.append({"message_type": "Request", "request_id": first_id,
                                 "metadata": {k.lower(): v for k, v in keys.items()}})
            reply = {"message_type": "Response", "request_id": first_id, "response_status": "Ok", "metadata": {}}
            if method == "boom":
                reply.update(message_type="Error", response_status="Error")
            elif method == "missing":
                reply.update(message_type="Error", response_status="Error")
            elif version == "2.0.2":
                reply["metadata"] = {"dubbo": "2.0.2"}
            expected_s2c.append(reply)
        if not heartbeat_from_client(peer.host, lambda: has_heartbeat(bytes(peer.streams[0]["s2c"]))):
            raise RuntimeError("the library's heartbeat was not answered")
        time.sleep(0.2)
        # The library may send more than one heartbeat while it waits: one entry per heartbeat
        # in the stream (its id read from the 16-byte header).
        data, at = bytes(peer.streams[0]["c2s"]), 0
        while at < len(data):
            (length,) = struct.unpack(">i", data[at + 12:at + 16])
            if data[at + 2] & 0x20:
                request_id = struct.unpack(">q", data[at + 4:at + 12])[0]
                expected_c2s.append({"message_type": "Heartbeat", "request_id": request_id, "metadata": {}})
                expected_s2c.append({"message_type": "Heartbeat", "request_id": request_id, "metadata": {}})
            at += 16 + length
        if peer.errors:
            raise peer.errors[0]
        return [{k: bytes(v) for k, v in s.items()} for s in peer.streams], [
            {"c2s": expected_c2s, "s2c": expected_s2c}]
    finally:
        peer.close()


def write_corpus() -> None:
    streams, expected = capture()
    if len(streams) != 1:
        raise RuntimeError(f"expected one connection, saw {len(streams)}")
    CORPUS.mkdir(parents=True, exist_ok=True)
    for i, stream in enumerate(streams):
        (CORPUS / f"conn{i}.c2s.bin").write_bytes(stream["c2s"])
        (CORPUS / f"conn{i}.s2c.bin").write_bytes(stream["s2c"])
    (CORPUS / "expected.json").write_text(json.dumps({
        "source": "tests/dubbo_peer.py: dubbo-ssl-python client against the provider in that file",
        "connections": expected}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_corpus()
    print(f"wrote {CORPUS}")
