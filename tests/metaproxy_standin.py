"""A stand-in for meta-protocol-proxy's router, for host-side tests of the proxy checks.

NOT the real proxy (that is an Envoy build; `image verify` and the e2e suite run it where the
internet is available).  It does what the framework does with a codec, as Aeraki's data plane
documents it, on 127.0.0.1 only: decode each downstream request with the given codec, pick the
first route of an `image verify` bootstrap (``codecgen.image.bootstrap.render_bootstrap``) whose
metadata matchers all hold (exact match on the decoded keys), encode the request with that
route's request_mutation and forward it to the route's cluster, relay the response; answer a
request without a route with the codec's error reply (RouteNotFound) and a heartbeat with the
codec's heartbeat reply.

``codec`` is any object with the reference codec's ``decode``/``encode``/``on_error``/
``heartbeat`` (``Sample.module.Codec()``).  :class:`WithoutMark` wraps one so that it decodes the
same bytes into the same keys but without codecgen's mark: what a different codec registered
under the same name does (meta-protocol-proxy's built-in Dubbo codec publishes interface,
method and the attachments, as the generated one does).
"""

from __future__ import annotations

import socket
import threading

import yaml

from codecgen import ir


class WithoutMark:
    """A codec that publishes the keys of ``codec``, less codecgen's mark."""

    def __init__(self, codec):
        self.codec = codec

    def decode(self, buf, direction="request"):
        md = self.codec.decode(buf, direction)
        if md is not None:
            md.strings.pop(ir.CODEC_ID_KEY.encode(), None)
        return md

    def __getattr__(self, name):
        return getattr(self.codec, name)


def _routes(bootstrap: str):
    doc = yaml.safe_load(bootstrap)
    (listener,) = doc["static_resources"]["listeners"]
    (flt,) = listener["filter_chains"][0]["filters"]
    clusters = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["port_value"] for c in doc["static_resources"]["clusters"]}
    routes = []
    for r in flt["typed_config"]["route_config"]["routes"]:
        match = {m["name"]: m["exact_match"] for m in r["match"]["metadata"]}
        mutation = {kv["key"]: kv["value"] for kv in r.get("request_mutation", [])}
        routes.append((match, clusters[r["route"]["cluster"]], mutation))
    return listener["address"]["socket_address"]["port_value"], routes


class RouterStandIn:
    """Listens on the bootstrap's listener port (127.0.0.1) until ``stop``."""

    def __init__(self, bootstrap: str, make_codec, response_codec):
        self.port, self.routes = _routes(bootstrap)
        self.make_codec = make_codec
        self.response_codec = response_codec
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _route(self, md):
        keys = {k.decode(): v.decode() for k, v in md.strings.items()}
        for match, port, mutation in self.routes:
            if all(keys.get(k) == v for k, v in match.items()):
                return port, mutation
        return None

    def _serve(self, conn: socket.socket) -> None:
        codec, buf = self.make_codec(), bytearray()
        with conn:
            conn.settimeout(5)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while True:
                    try:
                        md = codec.decode(buf, "request")
                    except Exception:  # the codec threw on garbage: the proxy closes the connection
                        return
                    if md is None:
                        break
                    conn.sendall(self._answer(codec, md))

    def _answer(self, codec, md) -> bytes:
        if md.message_type == "Heartbeat":
            return codec.heartbeat(md)
        found = self._route(md)
        if found is None:
            return codec.on_error(md, int(ir.ErrorType.RouteNotFound), "route not found")
        port, mutation = found
        with socket.create_connection(("127.0.0.1", port), timeout=5) as up:
            up.sendall(codec.encode(md, mutation, md.frame))
            reply, buf = None, bytearray()
            upstream = self.response_codec()
            while reply is None:
                data = up.recv(65536)
                if not data:
                    return b""
                buf += data
                reply = upstream.decode(buf, "response")
        return reply.frame
