"""The proxy checks prove the codec they name (issue 17), on 127.0.0.1 through a stand-in of
meta-protocol-proxy's router (tests/metaproxy_standin.py; the real proxy runs in image verify
and the e2e suite, which need the internet).

The evidence is codecgen's mark: every generated codec publishes ``x-codecgen-codec`` = its
codec name on each decoded request, never from the wire, and the routes of `image verify` (and
the e2e MetaRouter) match on it.  A proxy whose codec of that name is another one -- the
built-in Dubbo or Thrift codec, which publish the same interface/method keys -- routes nothing,
and the checks fail."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from codecgen import ir
from codecgen.errors import UserError
from codecgen.image.bootstrap import BootstrapPorts, render_bootstrap
from codecgen.sample import CheckFailed, Sample, SampleServer, probe_plan, proxy_checks
from metaproxy_standin import RouterStandIn, WithoutMark

ROOT = Path(__file__).resolve().parent.parent
# MQTT: the probe's default plan (packet_type=1/2/3, no sample_request in the spec) builds no
# valid packet (remaining_length stays 0), so no probe of it can run, with any codec.  A known gap
# of the sample tools, not of the evidence; strict, so it is noticed when fixed.
MQTT_GAP = pytest.mark.xfail(strict=True, raises=UserError,
                             reason="the probe's default requests are not valid MQTT packets")
PROTOCOLS = [pytest.param(p.stem, marks=MQTT_GAP) if p.stem == "mqtt" else p.stem
             for p in sorted((ROOT / "protocols").glob("*.py"))]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_checks(sample, wrap=lambda codec: codec, bootstrap_edit=lambda text: text):
    plan = probe_plan(sample.proto)
    listen, v1, v2, admin = _free_ports(4)
    bootstrap = render_bootstrap(sample.proto.name, plan.key, plan.values,
                                 BootstrapPorts(listen, v1, v2, admin), plan.mutation)
    servers = [SampleServer(sample, port, name).start() for port, name in ((v1, "v1"), (v2, "v2"))]
    proxy = RouterStandIn(bootstrap_edit(bootstrap), lambda: wrap(sample.module.Codec()), sample.module.Codec)
    lines = []
    try:
        proxy_checks(sample, listen, plan.key, plan.values, plan.mutation, lines.append,
                     unrouted=plan.unrouted)
    finally:
        proxy.stop()
        for server in servers:
            server.stop()
    return plan, lines


@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_checks_pass_through_a_proxy_running_the_generated_codec(name):
    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    plan, lines = _run_checks(sample)
    assert lines[0] == f"check routing: {plan.key}={plan.values[0]} answered by v1  OK"
    assert any(line.startswith("check error reply:") for line in lines)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_checks_fail_through_a_proxy_whose_codec_is_another(name):
    """Same keys from the same bytes, but not codecgen's codec: nothing is routed."""
    sample = Sample.load(str(ROOT / "protocols" / f"{name}.py"))
    plan = probe_plan(sample.proto)
    with pytest.raises(CheckFailed, match=rf"^{plan.key}={plan.values[0]} reached None, expected 'v1'$"):
        _run_checks(sample, wrap=WithoutMark)


def test_without_the_mark_in_the_routes_another_codec_would_pass():
    """The control: it is the mark in the routes that tells the codecs apart (Dubbo's built-in
    codec publishes interface and method just as the generated one does)."""
    sample = Sample.load(str(ROOT / "protocols" / "dubbo.py"))
    strip = lambda text: "\n".join(line for line in text.splitlines()  # noqa: E731
                                   if ir.CODEC_ID_KEY not in line and "exact_match: \"aeraki." not in line)
    _, lines = _run_checks(sample, wrap=WithoutMark, bootstrap_edit=strip)
    assert lines[0].endswith("answered by v1  OK")


def test_clients_never_send_the_mark():
    """On the wire the mark could be published by a built-in codec (Dubbo's publishes every
    attachment): the sample clients refuse to send it."""
    sample = Sample.load(str(ROOT / "protocols" / "dubbo.py"))
    with pytest.raises(UserError, match="--key X-Codecgen-Codec: codecgen's mark is published by the "
                                        "generated codec, never sent by a client"):
        sample.request({"X-Codecgen-Codec": "aeraki.meta_protocol.codec.dubbo"}, 1)


def test_the_mark_is_not_read_from_the_wire():
    """A header entry named like the mark is not published by the codec; the mark it publishes
    is its own, on requests only."""
    sample = Sample.load(str(ROOT / "protocols" / "meshrpc.py"))
    frame = sample.request({"service": "echo"}, 5)
    codec = sample.module.Codec()
    c = codec.parse(frame, 0)
    entry = sample.module._element()
    entry["key"], entry["value"] = b"x-codecgen-codec", b"forged"
    c.header.headers.append(entry)
    forged = codec.build(c, 0)
    md = codec.decode(bytearray(forged), "request")
    assert md.strings[b"x-codecgen-codec"] == b"aeraki.meta_protocol.codec.meshrpc"
    reply = sample.response(frame, codec.decode(bytearray(frame), "request"), "v1")
    assert b"x-codecgen-codec" not in codec.decode(bytearray(reply), "response").strings
