"""Sample server and client for any spec, built on the generated Python reference codec.

``codecgen serve`` answers every request with a valid response whose body says
who answered and which metadata keys it received; ``codecgen call`` sends
requests carrying chosen routing keys and prints the responses.  ``image
verify`` and the e2e suite use both through a proxy.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from codecgen import ir
from codecgen.backends import python as pyb
from codecgen.errors import UserError
from codecgen.spec import Protocol

BODY_PREFIX = b"codecgen:"
# The header a sample server answers with when the protocol has no body role (Dubbo).
ANSWER_KEY = "x-codecgen-answer"


@dataclass
class Sample:
    """A protocol's IR, its reference codec module and the spec's sample settings."""

    proto: ir.ProtocolIR
    module: object
    response_values: dict
    heartbeat_values: dict
    request_values: dict = None

    def __post_init__(self):
        # The extension fields by path, and whether the body role names a plain bytes field
        # (not absent, not an extension: Dubbo's body answers in the ANSWER_KEY header instead).
        self.extensions = {f.path: f for f in ir.extensions(self.proto.frame)}
        self.plain_body = self.proto.roles.body is not None and self.proto.roles.body not in self.extensions

    @classmethod
    def load(cls, spec_path: str, target: Optional[str] = None) -> "Sample":
        """``target``: the build target whose built-in codec names count (the default one)."""
        from codecgen.frontend import load_spec, lower

        protocol: Protocol = load_spec(spec_path)
        proto = lower(protocol, spec_file=spec_path, target=target)
        response = {tuple(k.split(".")): v for k, v in dict(protocol.sample_response).items()}
        heartbeat = {tuple(k.split(".")): v for k, v in dict(protocol.sample_heartbeat).items()}
        request = {tuple(k.split(".")): v for k, v in dict(protocol.sample_request).items()}
        return cls(proto, pyb.load(proto), response, heartbeat, request)

    # ------------------------------------------------------------------ requests

    def heartbeat(self, request_id: int) -> Optional[bytes]:
        """A heartbeat request (None when the spec gives no sample_heartbeat)."""
        if not self.heartbeat_values:
            return None
        return self.request({}, request_id, extra=self.heartbeat_values)

    def request(self, keys: dict[str, str], request_id: int, body: bytes = b"",
                extra: Optional[dict] = None) -> bytes:
        """A request frame with ``keys`` set on the fields (or headers) they route on."""
        r = self.proto.roles
        vals: dict = {**(self.request_values or {}), **(extra or {})}
        entries = []
        by_key = {k.key: k for k in r.routing_keys}
        fixed = {f.key: f.path for f in r.fixed_headers}
        exts = self.extensions
        ext_outputs: dict = {path: {} for path in exts}  # extension field -> {output: value}
        header_on_ext = r.header_map is not None and r.header_map.array in exts
        for key, text in keys.items():
            if key.lower() == ir.CODEC_ID_KEY:
                # Sent on the wire, a built-in codec could publish it (Dubbo's publishes every
                # attachment), and the probe's evidence would prove nothing.
                raise UserError(f"--key {key}: codecgen's mark is published by the generated codec, "
                                f"never sent by a client")
            if key in by_key and by_key[key].path[:-1] in exts:
                ext_outputs[by_key[key].path[:-1]][by_key[key].path[-1]] = text.encode()
            elif key in by_key:
                vals[by_key[key].path] = self._convert(by_key[key].path, text, key)
            elif key in fixed:
                vals[fixed[key]] = self._convert(fixed[key], text, key)
            elif header_on_ext:
                entries.append((key.encode(), text.encode()))
            elif r.header_map is not None:
                entries.append({r.header_map.key_field: key.encode(), r.header_map.value_field: text.encode()})
            else:
                known = ", ".join(list(by_key) + list(fixed)) or "none"
                raise UserError(f"--key {key}: not a routing key of {self.proto.name} (keys: {known})")
        if r.request_id is not None and r.request_id[:-1] in exts:  # an extension's output (Tars, tRPC)
            ext_outputs[r.request_id[:-1]][r.request_id[-1]] = request_id
        elif r.request_id is not None:
            vals[r.request_id] = self._fit(r.request_id, request_id)
        if r.body is not None and r.body not in exts:
            vals[r.body] = body
        container = pyb.fresh_container(self.module, vals, 0)
        if r.header_map is not None and entries and not header_on_ext:
            _set(container, r.header_map.array, entries)
        for path, field in exts.items():
            _set(container, path, self._extension_value(container, field, ext_outputs[path],
                                                        entries if header_on_ext and r.header_map.array == path else []))
        return self.module.FRAME_COMPILED.build(container, _direction=0)

    def _extension_value(self, container, field: ir.Field, outputs: dict, entries: list):
        """A valid value of an extension field from its ``sample_value`` hook."""
        cls = self.module.EXTENSIONS[field.node.kind]
        params = {}
        for name, expr in field.node.params:
            value = container
            for part in expr.path:
                value = value[part]
            params[name] = int(value)
        value = cls.sample_value(params, outputs, entries)
        if value is None:
            where = f"{self.proto.name}: extension field {ir.dotted(field.path)} ({field.node.kind})"
            # The classes are the reference module's (with its embedded ExtensionField), so the
            # hook counts as missing when no class below ExtensionField defines it.
            if not any("sample_value" in vars(c) for c in cls.__mro__ if c.__name__ != "ExtensionField"):
                raise UserError(f"{where} has no sample_value hook: the sample tools (serve, call, probe) "
                                f"cannot build its frames")
            raise UserError(f"{where}: its sample_value hook builds no value for parameters {params}; "
                            f"set them with the spec's sample_request / sample_response")
        return value

    def _node(self, path):
        return pyb.node_at(self.proto, path)

    def _convert(self, path, text: str, key: str):
        node = self._node(path)
        if isinstance(node, ir.Bytes):
            return text.encode()
        names = dict(getattr(node, "enum", ()))
        if text in names:
            return names[text]
        try:
            return int(text, 0)
        except ValueError:
            raise UserError(f"--key {key}={text}: {ir.dotted(path)} is an integer field") from None

    def _fit(self, path, value: int) -> int:
        bits, _, _, signed = pyb.int_bounds(self._node(path))
        return pyb.fit_int(self.module, value, bits, signed)

    # ------------------------------------------------------------------ responses

    def response(self, frame: bytes, md, name: str) -> bytes:
        """The answer to one decoded request: the request with the spec's sample_response
        values and a body naming the server and the keys it received."""
        container = self.module.Codec().parse(frame, 0)
        for path, value in self.response_values.items():
            _set(container, path, value)
        body = BODY_PREFIX + json.dumps({
            "server": name,
            "request_id": md.request_id,
            "keys": wire_keys(md),
        }, sort_keys=True).encode()
        rid = self.proto.roles.request_id

        def id_output(path) -> dict:  # the request id, when it is an output of this extension field
            return {rid[-1]: md.request_id} if rid is not None and rid[:-1] == path else {}

        container["@direction"] = 1
        if self.plain_body:
            _set(container, self.proto.roles.body, body)
            for path, field in self.extensions.items():  # a response has its own layout (tRPC)
                if any(expr.path == ir.DIRECTION_PATH for _, expr in field.node.params):
                    _set(container, path, self._extension_value(container, field, id_output(path), []))
        else:
            # No plain body (none, or an extension field, as Dubbo's): the answer travels as a
            # header, and the extension fields become response values (their sample_value hook).
            answer = [(ANSWER_KEY.encode(), body[len(BODY_PREFIX):])]
            header_path = self.proto.roles.header_map.array if self.proto.roles.header_map else None
            for path, field in self.extensions.items():
                _set(container, path, self._extension_value(container, field, id_output(path),
                                                            answer if path == header_path else []))
        return self.module.FRAME_COMPILED.build(container, _direction=1)


def drive_problem(sample: Sample) -> Optional[str]:
    """Why ``serve``/``call`` cannot drive this spec, in one line naming the role to set (None when
    they can): the sample request must decode as a Request, the sample server's answer (the request
    with ``sample_response`` applied) as a Response or Error, a ``sample_heartbeat`` request as a
    Heartbeat. ``codecgen check`` refuses a spec with a problem."""
    name = sample.proto.name
    for role, values in (("sample_request", sample.request_values), ("sample_response", sample.response_values),
                         ("sample_heartbeat", sample.heartbeat_values)):
        for path in values or {}:
            try:
                sample._node(path)
            except KeyError:
                return f"{name}: {role}: {ir.dotted(path)} is not a field of the frame"
    try:
        request = sample.request({}, 1)
        md = sample.module.Codec().decode(bytearray(request), "request")
    except UserError as exc:  # already names the culprit (an extension without a sample value)
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - construct's build errors, a value of the wrong type
        return (f"{name}: sample_request: the sample tools cannot build a valid request "
                f"({type(exc).__name__}: {' '.join(str(exc).split())})")
    if md is None or md.message_type != "Request":
        kind = "an incomplete frame" if md is None else md.message_type
        return (f"{name}: sample_request: a sample request decodes as {kind}, not Request; set sample_request "
                f"to the field values of a request")
    try:
        reply = sample.response(md.frame, md, "check")
    except Exception as exc:  # noqa: BLE001 - construct's build errors, a value of the wrong type
        return (f"{name}: sample_response: the sample server cannot build its answer "
                f"({type(exc).__name__}: {' '.join(str(exc).split())})")
    try:
        answer = sample.module.Codec().decode(bytearray(reply), "response")
    except sample.module.ProtocolError as exc:
        what = "is missing" if not sample.response_values else "does not make a request a response"
        return (f"{name}: sample_response {what}: the sample server's answer is not a valid response ({exc}); "
                f"set it to the field values that make a request a response")
    if answer is None or answer.message_type not in ("Response", "Error"):
        kind = "an incomplete frame" if answer is None else answer.message_type
        return (f"{name}: sample_response: the sample server's answer decodes as {kind}; set sample_response "
                f"to the field values that make a request a response")
    if sample.heartbeat_values:
        try:
            beat = sample.module.Codec().decode(bytearray(sample.heartbeat(2)), "request")
        except sample.module.ProtocolError as exc:
            return f"{name}: sample_heartbeat: a sample heartbeat is not a valid request frame ({exc})"
        if beat is None or beat.message_type != "Heartbeat":
            return f"{name}: sample_heartbeat: a sample heartbeat does not decode as a Heartbeat"
    return None


def wire_keys(md) -> dict:
    """The keys a request carried, as text: what its decode published, less the mark
    (``ir.CODEC_ID_KEY``) that the server's own codec adds and the wire never carries."""
    mark = ir.CODEC_ID_KEY.encode()
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in md.strings.items()
            if k != mark}


def _set(container, path, value) -> None:
    holder = container
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value


def body_report(sample: Sample, md) -> Optional[dict]:
    """The JSON a sample server put in a response body (or, without a plain body, in the
    ANSWER_KEY header), or None."""
    if not sample.plain_body:
        text = md.strings.get(ANSWER_KEY.encode())
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None
    container = sample.module.Codec().parse(md.frame, 1)
    body = container
    for part in sample.proto.roles.body:
        body = body.get(part) if body is not None else None
    if body is None or not bytes(body).startswith(BODY_PREFIX):  # no body: Modbus' exception reply
        return None
    try:
        return json.loads(bytes(body)[len(BODY_PREFIX):])
    except ValueError:
        return None


# --------------------------------------------------------------------------- server


class SampleServer:
    """A threaded TCP server on 127.0.0.1 answering with ``Sample.response``."""

    def __init__(self, sample: Sample, port: int, name: str, host: str = "127.0.0.1",
                 log: Callable[[str], None] = lambda line: None):
        self.sample = sample
        self.name = name
        self.log = log
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def serve_forever(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            t = threading.Thread(target=self._connection, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def start(self) -> "SampleServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()

    def _connection(self, conn: socket.socket) -> None:
        codec = self.sample.module.Codec()
        buf = bytearray()
        conn.settimeout(0.5)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while buf:
                    try:
                        md = codec.decode(buf, "request")
                    except self.sample.module.ProtocolError as exc:
                        self.log(f"{self.name}: closing a connection: {exc}")
                        return
                    if md is None:
                        break
                    self.requests += 1
                    try:
                        reply = self._answer(codec, md)
                    except Exception as exc:  # noqa: BLE001 - a connection thread reports, never dies
                        self.log(f"{self.name}: closing a connection: cannot answer request "
                                 f"{md.request_id}: {type(exc).__name__}: {exc}")
                        return
                    if reply:
                        conn.sendall(reply)

    def _answer(self, codec, md) -> bytes:
        keys = wire_keys(md)
        self.log(f"{self.name}: {md.message_type} {md.request_id} keys {json.dumps(keys, sort_keys=True)}")
        if md.message_type == "Heartbeat":
            return codec.heartbeat(md)
        if md.message_type != "Request":
            return b""
        return self.sample.response(md.frame, md, self.name)


# --------------------------------------------------------------------------- client


def call(sample: Sample, host: str, port: int, keys: dict[str, str], count: int = 1,
         timeout: float = 5.0, first_id: int = 1) -> list[dict]:
    """Send ``count`` requests on one connection; return each response as a JSON-ready dict."""
    codec = sample.module.Codec()
    out = []
    # Build every request first: a key the protocol cannot carry is refused before connecting.
    frames = [sample.request(keys, first_id + i, body=b"hello from codecgen call") for i in range(count)]
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise UserError(f"--to {host}:{port}: {exc.strerror or exc}") from None
    with conn:
        buf = bytearray()
        for i in range(count):
            request_id = first_id + i
            conn.sendall(frames[i])
            md = None
            while md is None:
                try:
                    md = codec.decode(buf, "response")
                except sample.module.ProtocolError as exc:
                    raise UserError(f"--to {host}:{port}: the response is not a valid "
                                    f"{sample.proto.name} frame: {exc}") from None
                if md is not None:
                    break
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    raise UserError(f"--to {host}:{port}: no response within {timeout:g}s") from None
                if not data:
                    raise UserError(f"--to {host}:{port}: connection closed before a response")
                buf += data
            result = md.as_json()
            result["sent_request_id"] = request_id
            result["answer"] = body_report(sample, md)
            out.append(result)
    return out


# --------------------------------------------------------------------------- proxy checks


class CheckFailed(Exception):
    """A traffic check through a proxy did not hold."""


#: The request mutation the checks expect on the route to v1 (image verify, e2e).
PROBE_MUTATION = {"x-codecgen-route": "v1"}
PROBE_VALUES = ("1", "2")


@dataclass(frozen=True)
class ProbePlan:
    """What the proxy checks send: ``key=values[0]`` is routed to v1 (with ``mutation``),
    ``key=values[1]`` to v2, ``key=unrouted`` nowhere (the codec's error reply)."""

    key: str
    values: tuple
    unrouted: str
    mutation: dict


def probe_plan(proto: ir.ProtocolIR, key: Optional[str] = None,
               values: Optional[tuple] = None) -> ProbePlan:
    """The spec's first routing key and ``PROBE_VALUES`` unless given, and an unrouted value
    that the key's field can carry (a number for an integer field)."""
    by_key = {k.key: k for k in proto.roles.routing_keys}
    if key is None:
        if not by_key:
            raise UserError(f"{proto.name}: the spec has no routing key to route on; pass --key")
        key = proto.roles.routing_keys[0].key
    values = tuple(values) if values is not None else PROBE_VALUES
    if len(values) != 2 or values[0] == values[1] or not all(values):
        raise UserError(f"--values wants two different non-empty values, got {list(values)}")
    unrouted = "codecgen-no-route"
    node = pyb.node_at(proto, by_key[key].path) if key in by_key else None
    text = isinstance(node, ir.Bytes) or (isinstance(node, ir.ExtOutput) and node.text)
    if node is not None and not text:
        names = [name for name, _ in getattr(node, "enum", ()) or () if name not in values]
        numbers = (str(n) for n in range(3, 1 << 7) if str(n) not in values)
        unrouted = names[0] if names and by_key[key].render is ir.Render.NAME else next(numbers)
    return ProbePlan(key, values, unrouted, dict(PROBE_MUTATION))


def _one(sample: Sample, host: str, port: int, keys: dict, request_id: int) -> dict:
    return call(sample, host, port, keys, count=1, first_id=request_id)[0]


def proxy_checks(sample: Sample, proxy_port: int, key: str, values: tuple[str, str],
                 mutation: dict[str, str], report: Callable[[str], None],
                 host: str = "127.0.0.1", unrouted: str = "codecgen-no-route") -> None:
    """Through a proxy at ``host:proxy_port`` whose routes send ``key=values[0]`` to the
    server named v1 (with ``mutation``) and ``key=values[1]`` to v2: routing, the mutation,
    the codec's error reply for an unrouted request, and the heartbeat.  Raises CheckFailed."""
    for request_id, (value, server) in enumerate(zip(values, ("v1", "v2")), start=101):
        got = _one(sample, host, proxy_port, {key: value}, request_id)
        answer = got.get("answer") or {}
        if answer.get("server") != server:
            raise CheckFailed(f"{key}={value} reached {answer.get('server')!r}, expected {server!r}")
        if got["request_id"] != request_id:
            raise CheckFailed(f"response request id {got['request_id']} != {request_id}")
        report(f"check routing: {key}={value} answered by {server}  OK")
        if server == "v1":
            has_headers = sample.proto.roles.header_map is not None
            if not has_headers:
                report(f"check mutation: skipped: {sample.proto.name} declares no mutable headers")
            else:
                keys = answer.get("keys", {})
                missing = {k: v for k, v in mutation.items() if keys.get(k) != v}
                if missing:
                    raise CheckFailed(f"request_mutation {missing} did not arrive at v1 (got {keys})")
                report(f"check mutation: {mutation} arrived at v1  OK")
    got = _one(sample, host, proxy_port, {key: unrouted}, 303)
    if got["request_id"] != 303 or got.get("answer") is not None:
        raise CheckFailed(f"an unrouted request ({key}={unrouted}) got {got}, expected the codec's "
                          f"error reply for id 303")
    report(f"check error reply: unrouted request 303 ({key}={unrouted}) answered by the codec as "
           f"{got['message_type']}  OK")
    frame = sample.heartbeat(404)
    if frame is None:
        report(f"check heartbeat: skipped: {sample.proto.name} has no sample_heartbeat")
        return
    codec = sample.module.Codec()
    with socket.create_connection((host, proxy_port), timeout=5) as conn:
        conn.sendall(frame)
        buf = bytearray()
        md = None
        while md is None:
            data = conn.recv(65536)
            if not data:
                raise CheckFailed("the proxy closed the connection instead of answering a heartbeat")
            buf += data
            md = codec.decode(buf, "response")
    if md.message_type != "Heartbeat" or md.request_id != 404:
        raise CheckFailed(f"heartbeat answered with {md.message_type} id {md.request_id}")
    report("check heartbeat: answered by the proxy  OK")
