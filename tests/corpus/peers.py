"""Real peers for the protocol proofs: servers and clients from libraries nobody here wrote.

Everything listens on and connects to 127.0.0.1 only, on ports the OS picks.  Used by
``tests/test_protocols_real.py`` (live traffic, error replies) and by ``generate.py`` (the
captured corpora).

- Thrift: Apache Thrift's Python library (``thrift``): ``TSimpleServer`` with a
  hand-written ``TProcessor``, framed transport, binary protocol (strict), and a client
  written the way the generated ones are (``writeMessageBegin`` / ``writeStruct`` /
  ``TApplicationException.read``), plain and through ``TMultiplexedProtocol``.
- Kafka: ``kafka-python``'s request classes and ``KafkaProtocol`` (the client's framing
  and response parser); a tiny broker answers each request with the library's own
  response class for that api key and version.
- Thrift THeader: the same processor behind ``thrift``'s ``THeaderProtocol`` (Apache's header
  transport, binary protocol inside): the server records the info headers of each request and
  answers with them (plus ``served-by``) as its own; the client sets headers per call.
- Modbus/TCP: ``pymodbus`` ``ModbusTcpClient`` against a ``pymodbus`` ``ModbusTcpServer``.

``Recorder`` is a TCP proxy that records each connection's bytes per direction; the
frame expectations each ``*_traffic`` function returns come from the libraries' own
objects (what the client sent, what the server answered), not from our codec.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import socket
import struct
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# --------------------------------------------------------------------------- recorder


@dataclass
class Connection:
    c2s: bytearray = field(default_factory=bytearray)
    s2c: bytearray = field(default_factory=bytearray)
    done: threading.Event = field(default_factory=threading.Event)


class Recorder:
    """A TCP proxy on 127.0.0.1 that forwards to ``upstream_port`` and records each
    connection's bytes, client->server and server->client."""

    def __init__(self, upstream_port: int, port: int = 0):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOCALHOST, port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections: list[Connection] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOCALHOST, self.upstream_port))
            conn = Connection()
            self.connections.append(conn)
            pumps = [threading.Thread(target=self._pump, args=(client, upstream, conn.c2s), daemon=True),
                     threading.Thread(target=self._pump, args=(upstream, client, conn.s2c), daemon=True)]
            for p in pumps:
                p.start()
            threading.Thread(target=self._join, args=(pumps, conn, client, upstream), daemon=True).start()

    @staticmethod
    def _pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                record += data
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def _join(pumps, conn, *socks):
        for p in pumps:
            p.join()
        for s in socks:
            s.close()
        conn.done.set()

    def wait(self, count: int, timeout: float = 5.0) -> list[Connection]:
        """The first ``count`` connections, once both their directions have closed."""
        deadline = time.monotonic() + timeout
        while len(self.connections) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        for conn in self.connections[:count]:
            if not conn.done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("a recorded connection did not close")
        return self.connections[:count]

    def close(self):
        self.listener.close()


@contextmanager
def recording(upstream_port: int, port: int = 0):
    rec = Recorder(upstream_port, port)
    try:
        yield rec
    finally:
        rec.close()


def expect(direction: str, message_type: str, request_id: int, **keys) -> dict:
    return {"direction": direction, "message_type": message_type, "request_id": request_id,
            "keys": {k: str(v) for k, v in keys.items()}}


# --------------------------------------------------------------------------- thrift

def _thrift():
    from thrift.Thrift import TApplicationException, TMessageType, TProcessor, TType

    class Args:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    # thrift_spec tuples as the generator writes them: (id, type, name, type args, default)
    ADD_ARGS = (None, (1, TType.I32, "a", None, None), (2, TType.I32, "b", None, None))
    ADD_RESULT = ((0, TType.I32, "success", None, None),)
    ECHO_ARGS = (None, (1, TType.STRING, "text", "UTF8", None))
    ECHO_RESULT = ((0, TType.STRING, "success", "UTF8", None),)
    EMPTY = ()

    SPECS = {  # method -> (args spec, result spec)
        "ping": (EMPTY, EMPTY), "add": (ADD_ARGS, ADD_RESULT), "echo": (ECHO_ARGS, ECHO_RESULT),
        "notify": (ECHO_ARGS, None), "fail": (EMPTY, EMPTY),
    }

    class Processor(TProcessor):
        """What a generated processor does, for the methods above."""

        def process(self, iprot, oprot):
            name, mtype, seqid = iprot.readMessageBegin()
            if name not in SPECS:
                iprot.skip(TType.STRUCT)
                iprot.readMessageEnd()
                x = TApplicationException(TApplicationException.UNKNOWN_METHOD, f"Unknown function {name}")
                oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seqid)
                x.write(oprot)
                oprot.writeMessageEnd()
                oprot.trans.flush()
                return
            args_spec, result_spec = SPECS[name]
            args = Args(a=None, b=None, text=None)
            iprot.readStruct(args, args_spec)
            iprot.readMessageEnd()
            if mtype == TMessageType.ONEWAY:
                return
            if name == "fail":
                x = TApplicationException(TApplicationException.INTERNAL_ERROR, "fail() always fails")
                oprot.writeMessageBegin(name, TMessageType.EXCEPTION, seqid)
                x.write(oprot)
            else:
                result = Args(success={"ping": None, "add": (args.a or 0) + (args.b or 0),
                                       "echo": args.text}[name])
                oprot.writeMessageBegin(name, TMessageType.REPLY, seqid)
                oprot.writeStruct(result, result_spec)
            oprot.writeMessageEnd()
            oprot.trans.flush()

    def call(prot, name, seqid, oneway=False, **args):
        """A generated client's send_X / recv_X."""
        args_spec, result_spec = SPECS.get(name, (EMPTY, EMPTY))
        prot.writeMessageBegin(name, TMessageType.ONEWAY if oneway else TMessageType.CALL, seqid)
        prot.writeStruct(Args(**args), args_spec)
        prot.writeMessageEnd()
        prot.trans.flush()
        if oneway:
            return None
        iprot = getattr(prot, "protocol", prot)  # TMultiplexedProtocol decorates the output side
        rname, rtype, rseqid = iprot.readMessageBegin()
        if rtype == TMessageType.EXCEPTION:
            x = TApplicationException()
            x.read(iprot)
            iprot.readMessageEnd()
            raise x
        result = Args(success=None)
        iprot.readStruct(result, result_spec)
        iprot.readMessageEnd()
        return result.success

    return Processor, call, TApplicationException, TMessageType


@contextmanager
def _simple_server(transport_factory, protocol_factory):
    """A TSimpleServer on 127.0.0.1 (plain and multiplexed service "Calc"); yields its port."""
    from thrift.server import TServer
    from thrift.TMultiplexedProcessor import TMultiplexedProcessor
    from thrift.transport import TSocket

    Processor, _, _, _ = _thrift()
    processor = TMultiplexedProcessor()
    processor.registerDefault(Processor())
    processor.registerProcessor("Calc", Processor())
    transport = TSocket.TServerSocket(host=LOCALHOST, port=0, socket_family=socket.AF_INET)
    transport.listen()
    transport.listen = lambda: None  # already listening; serve() would listen again
    port = transport.handle.getsockname()[1]
    server = TServer.TSimpleServer(processor, transport, transport_factory, protocol_factory)

    def serve():
        try:
            server.serve()
        except OSError:
            pass  # the listening socket was closed: stop

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        transport.handle.close()


@contextmanager
def thrift_server():
    """A framed, binary-protocol TSimpleServer (plain and multiplexed service "Calc")."""
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport

    with _simple_server(TTransport.TFramedTransportFactory(), TBinaryProtocol.TBinaryProtocolFactory()) as port:
        yield port


def thrift_client(port: int, service: str | None = None):
    """(protocol, transport) of a framed binary client, multiplexed when ``service`` is set."""
    from thrift.protocol import TBinaryProtocol, TMultiplexedProtocol
    from thrift.transport import TSocket, TTransport

    sock = TSocket.TSocket(LOCALHOST, port, socket_family=socket.AF_INET)
    sock.setTimeout(5000)
    trans = TTransport.TFramedTransport(sock)
    prot = TBinaryProtocol.TBinaryProtocol(trans)
    if service:
        prot = TMultiplexedProtocol.TMultiplexedProtocol(prot, service)
    trans.open()
    return prot, trans


def thrift_traffic(port: int) -> list[list[dict]]:
    """Two connections of calls; returns the expected frames of each connection."""
    _, call, TApplicationException, _ = _thrift()
    conns = []
    for service in (None, "Calc"):
        prot, trans = thrift_client(port, service)
        prefix = f"{service}:" if service else ""
        frames = []

        def req(name, seqid, mtype="Request"):
            frames.append(expect("request", mtype, seqid, method=prefix + name))

        def rsp(name, seqid, mtype="Response"):
            # A multiplexed server answers with the bare method name.
            frames.append(expect("response", mtype, seqid, method=name))

        seq = 1 if service is None else 100
        assert call(prot, "ping", seq) is None
        req("ping", seq), rsp("ping", seq)
        seq += 1
        assert call(prot, "add", seq, a=40, b=2) == 42
        req("add", seq), rsp("add", seq)
        seq += 1
        assert call(prot, "echo", seq, text="héllo, thrift") == "héllo, thrift"
        req("echo", seq), rsp("echo", seq)
        seq += 1
        call(prot, "notify", seq, oneway=True, text="fire and forget")
        req("notify", seq, "Oneway")
        seq += 1
        try:
            call(prot, "fail", seq)
            raise AssertionError("fail() returned")
        except TApplicationException as exc:
            assert exc.type == TApplicationException.INTERNAL_ERROR
        req("fail", seq), rsp("fail", seq, "Error")
        if service is None:
            seq += 1
            try:
                call(prot, "nosuchmethod", seq)
                raise AssertionError("nosuchmethod() returned")
            except TApplicationException as exc:
                assert exc.type == TApplicationException.UNKNOWN_METHOD
            req("nosuchmethod", seq), rsp("nosuchmethod", seq, "Error")
            seq = -7  # seqids are i32: negative ones too
            assert call(prot, "add", seq, a=-1, b=-2) == -3
            req("add", seq), rsp("add", seq)
        trans.close()
        conns.append(frames)
    return conns


# --------------------------------------------------------------------------- thrift THeader

SERVED_BY = {"served-by": "thrift-python"}
SERVED_BY_BYTES = {k.encode(): v.encode() for k, v in SERVED_BY.items()}


def _header_protocol_factory(received: list):
    """A THeaderProtocolFactory whose protocols append each request's info headers (str -> str)
    to ``received`` and echo them, with ``served-by``, as the reply's headers."""
    from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory

    class Recording(THeaderProtocol):
        def readMessageBegin(self):
            begin = super().readMessageBegin()
            headers = dict(self.get_headers())
            received.append({k.decode(): v.decode() for k, v in headers.items()})
            self.clear_headers()  # a oneway call gets no reply: nothing may carry over
            for key, value in headers.items():
                self.set_header(key, value)
            for key, value in SERVED_BY.items():
                self.set_header(key.encode(), value.encode())
            return begin

    class Factory(THeaderProtocolFactory):
        def getProtocol(self, trans):
            return Recording(trans, self.allowed_client_types, self.default_protocol)

    return Factory()


@contextmanager
def theader_server(received: list | None = None):
    """A THeader TSimpleServer (binary protocol; plain and multiplexed service "Calc") that
    accepts only THeader clients. ``received`` collects each request's info headers."""
    from thrift.transport import TTransport

    factory = _header_protocol_factory(received if received is not None else [])
    with _simple_server(TTransport.TTransportFactoryBase(), factory) as port:
        yield port


def theader_client(port: int, service: str | None = None):
    """(protocol, header protocol) of a THeader client, multiplexed when ``service`` is set;
    set per-call info headers on the second."""
    from thrift.protocol import TMultiplexedProtocol
    from thrift.protocol.THeaderProtocol import THeaderProtocol
    from thrift.transport import TSocket
    from thrift.transport.THeaderTransport import THeaderClientType

    sock = TSocket.TSocket(LOCALHOST, port, socket_family=socket.AF_INET)
    sock.setTimeout(5000)
    header = THeaderProtocol(sock, (THeaderClientType.HEADERS,))
    prot = TMultiplexedProtocol.TMultiplexedProtocol(header, service) if service else header
    header.trans.open()
    return prot, header


def theader_traffic(port: int) -> list[list[dict]]:
    """Two connections of calls with info headers; the expected frames of each connection."""
    _, call, TApplicationException, _ = _thrift()
    conns = []
    for service in (None, "Calc"):
        prot, header = theader_client(port, service)
        prefix = f"{service}:" if service else ""
        frames = []

        def exchange(name, seqid, headers, oneway=False, error=None, **args):
            for key, value in headers.items():
                header.set_header(key.encode(), value.encode())
            sent = {k.lower(): v for k, v in headers.items()}
            frames.append(expect("request", "Oneway" if oneway else "Request", seqid, method=prefix + name, **sent))
            try:
                result = call(prot, name, seqid, oneway=oneway, **args)
            except TApplicationException as exc:
                assert exc.type == error, (name, exc)
                result = exc
            else:
                assert error is None, name
            if not oneway:
                # A multiplexed server answers with the bare method name, and echoes the headers.
                frames.append(expect("response", "Error" if error else "Response", seqid, method=name,
                                     **sent, **SERVED_BY))
                assert header.get_headers() == {k.encode(): v.encode()
                                                for k, v in {**headers, **SERVED_BY}.items()}
            return result

        seq = 1 if service is None else 100
        assert exchange("ping", seq, {}) is None
        assert exchange("add", seq + 1, {"user": "alice", "X-Trace": "5f3a9c"}, a=40, b=2) == 42
        assert exchange("echo", seq + 2, {"tenant": "t\u00e9st", "env": "canary", "empty": ""},
                        text="h\u00e9llo, theader") == "h\u00e9llo, theader"
        exchange("notify", seq + 3, {"user": "bob"}, oneway=True, text="fire and forget")
        exchange("fail", seq + 4, {"user": "carol"}, error=TApplicationException.INTERNAL_ERROR)
        if service is None:
            exchange("nosuchmethod", seq + 5, {"user": "dave"}, error=TApplicationException.UNKNOWN_METHOD)
            assert exchange("add", -7, {"x-long": "v" * 300}, a=-1, b=-2) == -3  # negative seqid, 2-byte varint
        header.trans.close()
        conns.append(frames)
    return conns


# --------------------------------------------------------------------------- kafka

# (request class name, version, kwargs) — a mix of header v1 (non-flexible) and v2 (flexible).
def _kafka_requests():
    from kafka.protocol.admin import CreateTopicsRequest, DescribeGroupsRequest, ListGroupsRequest
    from kafka.protocol.consumer import HeartbeatRequest, ListOffsetsRequest
    from kafka.protocol.metadata import ApiVersionsRequest, FindCoordinatorRequest, MetadataRequest

    return [
        (ApiVersionsRequest, 0, {}),
        (ApiVersionsRequest, 3, {"client_software_name": "kafka-python", "client_software_version": "3.0"}),
        (MetadataRequest, 1, {"topics": None}),
        (MetadataRequest, 8, {"topics": [MetadataRequest.MetadataRequestTopic(name="orders")], "allow_auto_topic_creation": False,
                              "include_cluster_authorized_operations": False,
                              "include_topic_authorized_operations": False}),
        (MetadataRequest, 12, {"topics": None, "allow_auto_topic_creation": False,
                               "include_topic_authorized_operations": False}),
        (FindCoordinatorRequest, 1, {"key": "group-1", "key_type": 0}),
        (FindCoordinatorRequest, 4, {"key_type": 0, "coordinator_keys": ["group-1", "group-2"]}),
        (HeartbeatRequest, 3, {"group_id": "group-1", "generation_id": 3, "member_id": "m-1",
                               "group_instance_id": None}),
        (HeartbeatRequest, 4, {"group_id": "group-1", "generation_id": 3, "member_id": "m-1",
                               "group_instance_id": "i-1"}),
        (ListGroupsRequest, 2, {}),
        (ListGroupsRequest, 4, {"states_filter": ["Stable"]}),
        (DescribeGroupsRequest, 5, {"groups": ["group-1"], "include_authorized_operations": True}),
        (ListOffsetsRequest, 2, {"replica_id": -1, "isolation_level": 0, "topics": [
            ListOffsetsRequest.ListOffsetsTopic(name="orders", partitions=[
                ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(partition_index=0, timestamp=-1)])]}),
        (CreateTopicsRequest, 5, {"topics": [CreateTopicsRequest.CreatableTopic(
            name="t", num_partitions=1, replication_factor=1, assignments=[], configs=[])],
            "timeout_ms": 1000, "validate_only": True}),
    ]


@contextmanager
def kafka_broker():
    """A tiny broker: answers every request with kafka-python's response class for its api
    key and version (default field values), the response header echoing the correlation id."""
    from kafka.protocol.api_header import RequestHeader, ResponseClassRegistry

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOCALHOST, 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def read_exact(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def handle(conn):
        with conn:
            while True:
                size = read_exact(conn, 4)
                if size is None:
                    return
                body = read_exact(conn, struct.unpack(">i", size)[0])
                header = RequestHeader.decode(io.BytesIO(body), flexible=False)
                response = ResponseClassRegistry.get_response_class(header)()
                response.with_header(correlation_id=header.correlation_id)
                conn.sendall(response.encode(header=True, framed=True))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield port
    finally:
        listener.close()


def kafka_exchange(sock: socket.socket, proto, request, correlation_id=None) -> tuple[int, object]:
    """Send one request with the client's framing, read responses until it is answered."""
    correlation_id = proto.send_request(request, correlation_id)
    sock.sendall(proto.send_bytes())
    if not request.expect_response():
        return correlation_id, None
    while True:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the peer closed the connection")
        responses = proto.receive_bytes(data)
        if responses:
            (cid, response), = responses
            return cid, response


def kafka_traffic(port: int) -> list[list[dict]]:
    """Two connections (a client id, then a null one); the expected frames of each."""
    from kafka.protocol.parser import KafkaProtocol

    conns = []
    for client_id in ("codecgen-kafka", None):
        proto = KafkaProtocol(client_id=client_id)
        frames = []
        with socket.create_connection((LOCALHOST, port), timeout=5) as sock:
            for cls, version, kwargs in _kafka_requests():
                request = cls[version](**kwargs)
                cid, response = kafka_exchange(sock, proto, request)
                assert response is not None and type(response).__name__.startswith(cls.__name__[:-7] + "Response")
                keys = {"api_key": request.API_KEY, "api_version": version}
                if client_id is not None:
                    keys["client_id"] = client_id
                frames.append(expect("request", "Request", cid, **keys))
                frames.append(expect("response", "Response", cid))
        conns.append(frames)
    return conns


# --------------------------------------------------------------------------- modbus


@contextmanager
def modbus_server(devices=(1, 7)):
    """A pymodbus ModbusTcpServer (asyncio, in its own thread) with the given device ids."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    port = free_port()
    context = [SimDevice(id=d, simdata=(
        [SimData(0, values=[False] * 32, datatype=DataType.BITS)],                  # coils
        [SimData(0, values=[True, False] * 16, datatype=DataType.BITS)],            # discrete inputs
        [SimData(0, values=list(range(100, 132)), datatype=DataType.REGISTERS)],   # holding
        [SimData(0, values=list(range(200, 232)), datatype=DataType.REGISTERS)],   # input
    )) for d in devices]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    async def main():
        server = ModbusTcpServer(context, address=(LOCALHOST, port))
        holder["server"] = server
        task = asyncio.ensure_future(server.serve_forever())
        started.set()
        try:
            await task
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    started.wait(5)
    wait_listening(port)
    try:
        yield port
    finally:
        fut = asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        thread.join(5)


def modbus_client(port: int, **kw):
    from pymodbus.client import ModbusTcpClient

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    client = ModbusTcpClient(LOCALHOST, port=port, **kw)
    assert client.connect()
    return client


def modbus_traffic(port: int) -> list[list[dict]]:
    """One connection: reads and writes of several function codes, one exception response.
    Expected frames come from pymodbus's own PDUs (trace_pdu), both directions."""
    frames = []

    def trace(sending: bool, pdu):
        fc = pdu.function_code
        exc = fc & 0x80
        direction = "request" if sending else "response"
        mtype = "Error" if exc else ("Request" if sending else "Response")
        frames.append(expect(direction, mtype, pdu.transaction_id, unit_id=pdu.dev_id,
                             function_code=fc & 0x7F))
        return pdu

    client = modbus_client(port, trace_pdu=trace, retries=0)
    try:
        assert client.read_holding_registers(0, count=4, device_id=1).registers == [100, 101, 102, 103]
        assert client.read_input_registers(2, count=2, device_id=1).registers == [202, 203]
        assert client.read_coils(0, count=8, device_id=1).bits[:8] == [False] * 8
        assert client.read_discrete_inputs(0, count=4, device_id=1).bits[:4] == [True, False, True, False]
        assert not client.write_register(5, 0x1234, device_id=1).isError()
        assert not client.write_coil(3, True, device_id=1).isError()
        assert not client.write_registers(10, [1, 2, 3], device_id=1).isError()
        assert not client.write_coils(8, [True, False, True], device_id=1).isError()
        assert client.readwrite_registers(read_address=10, read_count=3, write_address=20,
                                          values=[7, 8], device_id=1).registers == [1, 2, 3]
        assert not client.mask_write_register(address=5, and_mask=0x00FF, or_mask=0x0100, device_id=1).isError()
        assert client.read_holding_registers(1, count=2, device_id=7).registers == [101, 102]
        bad = client.read_holding_registers(1000, count=2, device_id=1)
        assert bad.isError() and bad.exception_code == 0x02  # ILLEGAL DATA ADDRESS
    finally:
        client.close()
    return [frames]


# --------------------------------------------------------------------------- mqtt


@contextmanager
def mosquitto_broker(tmp_dir):
    """Eclipse Mosquitto (the Debian package) on 127.0.0.1, anonymous clients allowed."""
    import subprocess

    port = free_port()
    conf = f"{tmp_dir}/mosquitto.conf"
    with open(conf, "w") as f:
        f.write(f"listener {port} {LOCALHOST}\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


MQTT_TYPES = {"CONNECT": 1, "CONNACK": 2, "PUBLISH": 3, "PUBACK": 4, "PUBREC": 5, "PUBREL": 6, "PUBCOMP": 7,
              "SUBSCRIBE": 8, "SUBACK": 9, "UNSUBSCRIBE": 10, "UNSUBACK": 11, "PINGREQ": 12, "PINGRESP": 13,
              "DISCONNECT": 14}


def _mqtt_expected(logs: list[str]) -> list[dict]:
    """The frames paho says it sent and received (its on_log lines), as the spec types them
    (request id 0: protocols/mqtt.py has none)."""
    import re

    frames = []
    for line in logs:
        m = re.match(r"(Sending|Received) ([A-Z]+)\b(.*)", line)
        if not m or m.group(2) not in MQTT_TYPES:
            continue
        direction = "request" if m.group(1) == "Sending" else "response"
        name, rest = m.group(2), m.group(3)
        keys = {"packet_type": MQTT_TYPES[name]}
        mtype = "Request" if direction == "request" else "Response"
        if name == "CONNECT":
            keys["client_id"] = re.search(r"client_id=b'([^']*)'", rest).group(1)
        if name == "CONNACK" and re.match(r" \(\d+, (\w+)\)", rest).group(1) not in ("0", "Success"):
            mtype = "Error"
        if name == "PUBLISH":
            keys["topic"] = re.search(r"'(?:b')?([^']+)'", rest).group(1)
            if re.search(r"\bq0\b", rest) and direction == "request":
                mtype = "Oneway"
        if name in ("PINGREQ", "PINGRESP"):
            mtype = "Heartbeat"
        if name == "DISCONNECT" and direction == "request":
            mtype = "Oneway"
        frames.append(expect(direction, mtype, 0, **keys))
    return frames


def mqtt_traffic(port: int) -> list[list[dict]]:
    """Three paho clients through the broker: a 3.1.1 subscriber (QoS 1 and 2 deliveries
    from the broker, a ping), a 3.1.1 publisher (QoS 0, 1, 2) and a 5.0 client with
    properties.  Expected frames come from paho's own log of what it sent and received."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    logs = {}
    received = threading.Event()
    got = []

    def client(client_id, protocol):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        logs[client_id] = []
        c.on_log = lambda _c, _u, _level, buf: logs[client_id].append(buf)
        return c

    def settle(c, count):
        deadline = time.monotonic() + 5
        while len(logs[c._client_id.decode()]) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    sub = client("codecgen-sub", mqtt.MQTTv311)
    sub.on_message = lambda _c, _u, msg: (got.append(msg.topic), len(got) == 3 and received.set())
    sub.connect(LOCALHOST, port, keepalive=30)
    sub.loop_start()
    settle(sub, 2)
    sub.subscribe("sensors/#", qos=2)
    settle(sub, 4)

    pub = client("codecgen-pub", mqtt.MQTTv311)
    pub.connect(LOCALHOST, port)
    pub.loop_start()
    settle(pub, 2)
    for qos in (0, 1, 2):
        pub.publish(f"sensors/q{qos}", f"reading {qos}".encode(), qos=qos).wait_for_publish(5)
    assert received.wait(5), got
    pub.disconnect()
    pub.loop_stop()

    settle(sub, 4 + 1 + 2 + 4)  # deliveries: QoS 0 one line, QoS 1 two, QoS 2 four
    sub._send_pingreq()  # what paho's keep-alive timer sends
    settle(sub, 13)
    sub.unsubscribe("sensors/#")
    settle(sub, 15)
    sub.disconnect()
    sub.loop_stop()

    v5 = client("codecgen-v5", mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 30
    v5.connect(LOCALHOST, port, properties=props)
    v5.loop_start()
    settle(v5, 2)
    pprops = Properties(PacketTypes.PUBLISH)
    pprops.UserProperty = ("source", "codecgen")
    v5.publish("lab/v5", b"five", qos=1, properties=pprops).wait_for_publish(5)
    v5.disconnect()
    v5.loop_stop()
    time.sleep(0.1)
    if DEBUG_LOGS:
        for c in logs:
            print("\n".join(logs[c]))
    return [_mqtt_expected(logs[c]) for c in ("codecgen-sub", "codecgen-pub", "codecgen-v5")]


DEBUG_LOGS = False


@contextmanager
def mosquitto_server():
    """mosquitto_broker with a configuration folder of its own, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, mosquitto_broker(tmp) as port:
        yield port



# --------------------------------------------------------------------------- node.js peers

NODE_PEERS = Path(__file__).resolve().parent.parent / "node"


def node_available(module: str) -> bool:
    return shutil.which("node") is not None and (NODE_PEERS / "node_modules" / module).is_dir()


@contextmanager
def node_server(script: str, lines: list | None = None):
    """``node tests/node/<script> server`` on 127.0.0.1; yields its port. Every JSON line it
    prints after the port goes to ``lines``; on exit its stderr must be empty."""
    proc = subprocess.Popen(["node", "--no-warnings", str(NODE_PEERS / script), "server"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=NODE_PEERS)
    reader = None
    try:
        port = json.loads(proc.stdout.readline())["port"]
        wait_listening(port, timeout=15)  # @tars/rpc binds after it returns from start()
        sink = lines if lines is not None else []
        reader = threading.Thread(target=lambda: sink.extend(json.loads(line) for line in proc.stdout), daemon=True)
        reader.start()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if reader is not None:
            reader.join(5)
        errors = proc.stderr.read()
        assert not errors, f"{script} server: {errors}"


def node_client(script: str, mode: str, port: int) -> list[dict]:
    """``node tests/node/<script> <mode> PORT``: the JSON lines it prints."""
    done = subprocess.run(["node", "--no-warnings", str(NODE_PEERS / script), mode, str(port)], capture_output=True, text=True,
                          timeout=30, cwd=NODE_PEERS)
    assert done.returncode == 0 and not done.stderr, (script, mode, done.stderr)
    return [json.loads(line) for line in done.stdout.splitlines()]


# --------------------------------------------------------------------------- bolt


def bolt_server(lines: list | None = None):
    """sofa-bolt-node's decoder and encoder as a server (tests/node/bolt_peer.js)."""
    return node_server("bolt_peer.js", lines)


def bolt_request_keys(sent: dict) -> dict:
    """The header sofa-bolt-node writes for a request (``service``; with protobuf also the
    sofa_head_* keys and the request props), keys lower-cased as published, and the spec's
    routing key ``method`` (sofa_head_method_name)."""
    keys = {"service": sent["serverSignature"]}
    if sent["codec"] == "protobuf":
        keys.update(sofa_head_method_name=sent["methodName"], sofa_head_target_app=sent["targetAppName"],
                    sofa_head_target_service=sent["serverSignature"], method=sent["methodName"])
        keys.update({k.lower(): v for k, v in (sent["props"] or {}).items()})
    return keys


def bolt_traffic(port: int) -> list[list[dict]]:
    """sofa-bolt-node's client (tests/node/bolt_peer.js): hessian2 and protobuf calls, request
    props, a oneway call, a server exception and a heartbeat; the same on two connections."""
    return [_bolt_connection(port) for _ in range(2)]


def _bolt_connection(port: int) -> list[dict]:
    frames = []
    for call in node_client("bolt_peer.js", "client", port):
        sent, got, rid = call["sent"], call["got"], call["id"]
        if sent["packetType"] == "heartbeat":
            assert got == {"packetType": "heartbeat_ack"}, call
            frames += [expect("request", "Heartbeat", rid), expect("response", "Heartbeat", rid)]
            continue
        frames.append(expect("request", "Oneway" if sent["oneway"] else "Request", rid, **bolt_request_keys(sent)))
        if sent["oneway"]:
            assert got is None, call
            continue
        failed = "error" in got
        assert failed == (sent["methodName"] == "fail"), call
        keys = {"sofa_head_response_error": str(failed).lower()} if sent["codec"] == "protobuf" else {}
        frames.append(expect("response", "Error" if failed else "Response", rid, **keys))
    return frames



# --------------------------------------------------------------------------- tars


def tars_server(lines: list | None = None):
    """@tars/rpc's server (HeroServer) with an echo servant (tests/node/tars_peer.js)."""
    return node_server("tars_peer.js", lines)


def tars_traffic(port: int) -> list[list[dict]]:
    """@tars/rpc's client (a Communicator proxy, tests/node/tars_peer.js) twice: calls with and
    without context, a oneway call, a failing call, an unknown function, long strings; then TUP
    calls (@tars/stream's Tup), answered with RequestPackets carrying STATUS_RESULT_CODE."""
    return [_tars_connection(port), _tars_connection(port), _tars_tup_connection(port)]


def _tars_connection(port: int) -> list[dict]:
    frames = []
    for call in node_client("tars_peer.js", "client", port):
        rid, context = call["requestId"], {k.lower(): v for k, v in call["context"].items()}
        kind = "Oneway" if call["packetType"] == 1 else "Request"
        frames.append(expect("request", kind, rid, servant=TARS_SERVANT, func=call["func"], **context))
        if kind == "Oneway":
            continue
        assert call["ok"] == (call["ret"] == 0), call
        keys = {k.lower(): v for k, v in (call["responseContext"] or {}).items()}
        frames.append(expect("response", "Response" if call["ok"] else "Error", rid, **keys))
    return frames


def _tars_tup_connection(port: int) -> list[dict]:
    frames = []
    for call in node_client("tars_peer.js", "tup", port):
        assert call["requestId"] == call["sent"], call
        keys = {"servant": TARS_SERVANT, "func": call["func"]}
        frames += [expect("request", "Request", call["sent"], **keys),
                   expect("response", "Response" if call["ret"] == 0 else "Error", call["sent"], **keys)]
    return frames


TARS_SERVANT = "Test.EchoServer.EchoObj"


# protocol -> (server context manager yielding its port, traffic(port) -> expected frames per connection):
# what generate.py captures and what tests/test_protocols_real.py replays live.
PEERS = {
    "thrift": (thrift_server, thrift_traffic),
    "thriftheader": (theader_server, theader_traffic),
    "kafka": (kafka_broker, kafka_traffic),
    "modbus": (modbus_server, modbus_traffic),
    "mqtt": (mosquitto_server, mqtt_traffic),
    "bolt": (bolt_server, bolt_traffic),
    "tars": (tars_server, tars_traffic),
}
