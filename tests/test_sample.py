"""`codecgen serve` / `codecgen call` over 127.0.0.1, and the proxy checks' verdicts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from codecgen.errors import UserError
from codecgen.sample import CheckFailed, Sample, SampleServer, call, proxy_checks
from conftest import ROOT

MESHRPC = str(ROOT / "protocols" / "meshrpc.py")
AWESOMERPC = str(ROOT / "protocols" / "awesomerpc.py")


@pytest.fixture(scope="module")
def mesh():
    return Sample.load(MESHRPC)


def _server(sample, name="v1"):
    return SampleServer(sample, 0, name).start()


def test_call_reaches_the_server_and_reports_the_keys(mesh):
    server = _server(mesh, "blue")
    try:
        responses = call(mesh, "127.0.0.1", server.port,
                         {"service": "echo", "method": "Say", "Foo1": "bar1"}, count=3, first_id=40)
    finally:
        server.stop()
    assert [r["request_id"] for r in responses] == [40, 41, 42]
    for r in responses:
        assert r["message_type"] == "Response" and r["response_status"] == "Ok"
        assert r["answer"]["server"] == "blue"
        # Header keys arrive lower-cased, as the codec publishes them.
        assert r["answer"]["keys"] == {"service": "echo", "method": "Say", "foo1": "bar1"}
    assert server.requests == 3


def test_heartbeat_is_answered_by_a_sample_server(mesh):
    server = _server(mesh)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(mesh.heartbeat(77))
            codec, buf, md = mesh.module.Codec(), bytearray(), None
            while md is None:
                buf += conn.recv(4096)
                md = codec.decode(buf, "response")
    finally:
        server.stop()
    assert md.message_type == "Heartbeat" and md.request_id == 77


def test_awesomerpc_by_direction_protocol(tmp_path):
    sample = Sample.load(AWESOMERPC)
    assert sample.heartbeat(1) is None
    server = _server(sample, "v2")
    try:
        [r] = call(sample, "127.0.0.1", server.port, {"cmd": "-7"})
    finally:
        server.stop()
    assert r["metadata"] == {"cmd": "-7"} and r["answer"]["server"] == "v2"


def test_unknown_key_and_bad_values_are_user_errors():
    sample = Sample.load(AWESOMERPC)
    with pytest.raises(UserError, match="--key nope: not a routing key of awesomerpc"):
        sample.request({"nope": "1"}, 1)
    with pytest.raises(UserError, match="--key cmd=abc: req_cmd is an integer field"):
        sample.request({"cmd": "abc"}, 1)


def test_proxy_checks_detect_a_wrong_route(mesh):
    # Pointing the checks straight at one server (no proxy in between): the request for
    # v2 is answered by v1, which the routing check must report.
    v1 = _server(mesh, "v1")
    lines = []
    try:
        with pytest.raises(CheckFailed, match=r"service=b reached 'v1', expected 'v2'"):
            proxy_checks(mesh, v1.port, "service", ("a", "b"), {}, lines.append)
    finally:
        v1.stop()
    # The v1 checks ran and held before the v2 request went to the wrong server.
    assert lines == ["check routing: service=a answered by v1  OK", "check mutation: {} arrived at v1  OK"]


def test_proxy_checks_detect_a_missing_mutation(mesh):
    v1 = _server(mesh, "v1")
    try:
        with pytest.raises(CheckFailed, match="request_mutation .* did not arrive at v1"):
            proxy_checks(mesh, v1.port, "service", ("a", "b"), {"x-codecgen-route": "v1"}, print)
    finally:
        v1.stop()


def test_cli_serve_and_call(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "codecgen.cli", "serve", MESHRPC, "--port", str(port),
                               "--name", "v9", "--count", "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert "serving meshrpc" in server.stdout.readline()
        out = subprocess.run([sys.executable, "-m", "codecgen.cli", "call", MESHRPC, "--to", f"127.0.0.1:{port}",
                              "--key", "method=Ping", "--count", "2"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        assert [line["answer"]["server"] for line in lines] == ["v9", "v9"]
        assert server.wait(timeout=20) == 0
        log = server.stdout.read()
        assert 'v9: Request 1 keys {"method": "Ping"}' in log
    finally:
        server.kill()


def test_cli_call_errors_are_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "codecgen.cli", "call", MESHRPC, "--to", "nohost"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip() == "codecgen: error: --to wants HOST:PORT, got 'nohost'"


def test_probe_plan_picks_an_unrouted_value_the_key_can_carry():
    """awesomerpc routes on an integer field: the unrouted request must still be buildable
    (image verify and e2e send it to get the codec's error reply)."""
    from codecgen.frontend import load
    from codecgen.sample import probe_plan

    awesome = Sample.load(AWESOMERPC)
    plan = probe_plan(awesome.proto)
    assert (plan.key, plan.values, plan.unrouted) == ("cmd", ("1", "2"), "3")
    awesome.request({plan.key: plan.unrouted}, 1)  # builds
    mesh = probe_plan(load(MESHRPC), "service", ("echo", "ping"))
    assert mesh.unrouted == "codecgen-no-route" and mesh.values == ("echo", "ping")
    with pytest.raises(UserError, match="two different non-empty values"):
        probe_plan(load(MESHRPC), values=("a", "a"))


def test_cli_probe_reports_the_failed_check_in_one_line(mesh):
    from codecgen.cli import main

    v1 = _server(mesh, "v1")
    try:
        proc = subprocess.run([sys.executable, "-m", "codecgen.cli", "probe", MESHRPC, "--to",
                               f"127.0.0.1:{v1.port}", "--key", "service", "--values", "a", "b",
                               "--mutation", "x-k=v"], capture_output=True, text=True, timeout=60)
    finally:
        v1.stop()
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "probe: check routing: service=a answered by v1  OK"
    assert proc.stderr == "codecgen probe: FAILED: request_mutation {'x-k': 'v'} did not arrive at v1 " \
                          "(got {'service': 'a'})\n"
    assert main(["probe", MESHRPC, "--to", "nowhere"]) == 2


@pytest.mark.parametrize("name, keys", [
    ("thriftheader", {"method": "Add", "user": "alice", "X-Trace": "t1"}),
    ("ttheader", {"method": "Add", "to_service": "calc", "to_method": "Add", "isn": "Calc"}),
    ("bolt", {"service": "com.example.Echo:1.0", "method": "echo", "user": "alice"}),
    ("tars", {"servant": "Test.EchoServer.EchoObj", "func": "echo", "user": "alice"}),
])
def test_extension_headers_serve_and_call_through_the_hook(name, keys):
    """The header (Tars: the whole packet, request id included) is an extension field: its
    sample_value hook carries the keys, so serve/call/probe (and image verify, e2e) work."""
    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    server = _server(sample, "v2")
    try:
        (got,) = call(sample, "127.0.0.1", server.port, keys, count=1, first_id=9)
    finally:
        server.stop()
    want = {k.lower(): v for k, v in keys.items()}
    if name == "bolt":  # its routing key method is the header sofa_head_method_name
        want["sofa_head_method_name"] = keys["method"]
    assert got["message_type"] == "Response" and got["request_id"] == 9
    assert got["answer"] == {"server": "v2", "request_id": 9, "keys": want}
    if name == "tars":  # a fresh ResponsePacket: its context carries the answer, as Dubbo's attachments do
        assert set(got["metadata"]) == {"x-codecgen-answer"}
    else:
        assert got["metadata"] == want  # the reply echoes the request's header


@pytest.mark.parametrize("name, keys", [
    ("trpcunary", {"func": "/trpc.test.Greeter/SayHello", "callee": "trpc.test.Greeter", "App-User": "alice"}),
    ("baidustd", {"service": "example.EchoService", "method": "Echo", "tenant": "blue"}),
])
def test_protobuf_headers_serve_and_call_through_the_extension_hook(name, keys):
    """The header is a protobuf extension field with the request id inside: the sample_value
    hook carries it, the routing keys and the header map (tRPC's trans_info, brpc's
    user_fields); a tRPC response is a ResponseProtocol with the request's id."""
    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    server = _server(sample, "v1")
    try:
        got = call(sample, "127.0.0.1", server.port, keys, count=2, first_id=2**32 - 1)
    finally:
        server.stop()
    want = {k.lower(): v for k, v in keys.items()}
    # tRPC's request id is a uint32: 2**32 wraps to 0; brpc's correlation id is an int64.
    ids = [2**32 - 1, 0] if name == "trpcunary" else [2**32 - 1, 2**32]
    assert [g["request_id"] for g in got] == ids and {g["message_type"] for g in got} == {"Response"}
    assert [g["answer"] for g in got] == [{"server": "v1", "request_id": i, "keys": want} for i in ids]


def test_dubbo_serves_calls_and_answers_heartbeats_through_its_body_hook():
    """Dubbo's body is an extension field: requests carry interface, method and attachments,
    the answer comes back as an attachment of an OK response (there is no plain body)."""
    from codecgen.sample import ANSWER_KEY

    dubbo = Sample.load(str(ROOT / "protocols" / "dubbo.py"))
    server = _server(dubbo, "v1")
    try:
        (got,) = call(dubbo, "127.0.0.1", server.port, {"interface": "org.example.Hello", "method": "say",
                                                        "X-User": "alice"}, first_id=12)
        frame = dubbo.heartbeat(13)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(frame)
            reply = conn.recv(1024)
    finally:
        server.stop()
    keys = {"interface": "org.example.Hello", "method": "say", "x-user": "alice"}
    assert got["message_type"] == "Response" and got["request_id"] == 12
    assert got["answer"] == {"server": "v1", "request_id": 12, "keys": keys}
    assert list(got["metadata"]) == [ANSWER_KEY]
    assert frame[2] == 0xE2  # request, two-way, event, Hessian 2: Dubbo's heartbeat
    md = dubbo.module.Codec().decode(bytearray(reply), "response")
    assert md.message_type == "Heartbeat" and md.request_id == 13


def test_an_extension_that_cannot_build_a_value_is_refused_in_one_line(tmp_path):
    """A spec without sample_request: Dubbo's body hook gets serialization 0 and builds
    nothing; call says so before connecting."""
    text = (ROOT / "protocols" / "dubbo.py").read_text()
    start = text.index("    sample_request=")
    spec = tmp_path / "dubbo.py"
    spec.write_text(text[:start] + text[text.index("\n", start) + 1:])
    proc = subprocess.run([sys.executable, "-m", "codecgen.cli", "call", str(spec), "--to", "127.0.0.1:1",
                           "--key", "interface=a.B"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == ("codecgen: error: dubbo: extension field body (dubbo_body): its sample_value hook "
                           "builds no value for parameters {'request': 0, 'event': 0, 'status': 0, "
                           "'serialization': 0}; set them with the spec's sample_request / sample_response\n")


@pytest.mark.parametrize("name, keys", [
    ("dubbo", {"interface": "org.example.Hello", "method": "say", "X-User": "alice"}),
    ("thriftheader", {"method": "Add", "user": "alice"}),
    ("ttheader", {"method": "Add", "to_service": "calc", "isn": "Calc"}),
    ("meshrpc", {"service": "echo", "method": "Say", "Foo1": "bar1"}),
    ("trpcunary", {"func": "/a.B/C", "caller": "trpc.app.client.C", "trpc-env": "test"}),
    ("baidustd", {"service": "Echo", "method": "Say", "tenant": "blue"}),
    ("bolt", {"service": "com.example.Echo:1.0", "method": "echo", "user": "alice"}),
    ("tars", {"servant": "Test.EchoServer.EchoObj", "func": "echo", "user": "alice"}),
])
def test_sample_frames_decode_alike_on_the_generated_cpp_codec(name, keys):
    """What image verify and the e2e probe send goes through the C++ codec: the sample
    requests, responses and heartbeats decode there exactly as in the reference."""
    from codecgen import engines

    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    request = sample.request(keys, 21)
    md = sample.module.Codec().decode(bytearray(request), "request")
    frames = [("request", request), ("response", sample.response(request, md, "v1"))]
    if sample.heartbeat(22) is not None:
        frames.append(("request", sample.heartbeat(22)))
    for direction, frame in frames:
        py = engines.decode_stream(sample.proto, frame, direction, engine="python")
        cpp = engines.decode_stream(sample.proto, frame, direction, engine="cpp")
        assert py.error is None and py.held == 0 and len(py.frames) == 1, (direction, py.error)
        assert cpp.frames == py.frames and cpp.error is None, direction


# --------------------------------------------------------------------------- specs the sample tools cannot drive

def _scaffold_without(tmp_path, line: str) -> Path:
    """The scaffold `codecgen new` writes, with one of its lines removed."""
    from codecgen.scaffold import scaffold

    text = scaffold("myrpc")
    assert line in text
    spec = tmp_path / "myrpc.py"
    spec.write_text(text.replace(line, ""))
    return spec


@pytest.mark.parametrize("command", ["check", "serve", "call"])
def test_a_spec_without_sample_response_is_refused_naming_the_role(tmp_path, command):
    spec = _scaffold_without(tmp_path, '    sample_response={"flags.response": 1, "header.status": OK},\n')
    extra = {"check": [], "serve": ["--port", "0"], "call": ["--to", "127.0.0.1:9"]}[command]
    out = subprocess.run([sys.executable, "-m", "codecgen.cli", command, str(spec), *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "codecgen: error: myrpc: sample_response is missing: the sample server's answer is not a valid "
        "response (a request frame arrived from upstream); set it to the field values that make a request "
        "a response"]


def test_sample_roles_naming_no_field_or_a_wrong_heartbeat_are_refused_by_check(tmp_path):
    spec = _scaffold_without(tmp_path, "")
    text = spec.read_text()
    for index, (old, new, message) in enumerate([
        ('sample_heartbeat={"flags.heartbeat": 1}', 'sample_heartbeat={"flags.beat": 1}',
         "myrpc: sample_heartbeat: flags.beat is not a field of the frame"),
        ('sample_heartbeat={"flags.heartbeat": 1}', 'sample_heartbeat={"request_id": 5}',
         "myrpc: sample_heartbeat: a sample heartbeat does not decode as a Heartbeat"),
        ('sample_response={"flags.response": 1, "header.status": OK}', 'sample_response={"header.status": OK}',
         "myrpc: sample_response does not make a request a response: the sample server's answer is not a "
         "valid response (a request frame arrived from upstream); set it to the field values that make a "
         "request a response"),
    ]):
        # one file per case: a same-size rewrite within a second would reuse the cached bytecode
        spec = tmp_path / f"case{index}" / "myrpc.py"
        spec.parent.mkdir()
        spec.write_text(text.replace(old, new))
        out = subprocess.run([sys.executable, "-m", "codecgen.cli", "check", str(spec)],
                             capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stderr.strip()) == (2, f"codecgen: error: {message}")


def test_a_request_the_server_cannot_answer_closes_that_connection_only(mesh):
    """A sample whose answer cannot be built (a value of the wrong type: what check refuses): the
    connection thread logs one line and closes; the server keeps serving."""
    broken = Sample(mesh.proto, mesh.module, {("header", "status"): "not a number"}, {}, {})
    lines = []
    server = SampleServer(broken, 0, "v1", log=lines.append).start()
    try:
        for attempt in (1, 2):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
                conn.sendall(broken.request({"service": "echo"}, attempt))
                assert conn.recv(4096) == b""  # closed, no answer
    finally:
        server.stop()
    failures = [line for line in lines if "closing a connection" in line]
    assert len(failures) == 2 and failures[0].startswith("v1: closing a connection: cannot answer request 1: ")
