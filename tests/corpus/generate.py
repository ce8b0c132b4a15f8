"""Regenerate the captured corpora: ``python tests/corpus/generate.py [thrift thriftheader kafka modbus mqtt]``.

For each protocol: start the real server (``peers``), put a recording proxy in front of
it, capture the client<->proxy leg with ``dumpcap`` on the loopback interface (capture
filter on the proxy's port), run the real client's traffic, and write into
``tests/corpus/<proto>/``:

- ``capture.pcap``: what dumpcap saw (libpcap format);
- ``connN.c2s.bin`` / ``connN.s2c.bin``: the bytes the proxy relayed on connection N;
- ``expected.json``: the proxy port and, per connection, the frames the libraries say
  they sent (direction, message type, request id, routing keys).

Needs root (or capture rights), Wireshark's dumpcap and (for MQTT) mosquitto.  Only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402



def capture(name: str) -> None:
    server, traffic = peers.PEERS[name]
    out = HERE / name
    out.mkdir(exist_ok=True)
    for old in out.glob("conn*.bin"):
        old.unlink()
    pcap = out / "capture.pcap"
    with server() as upstream:
        port = peers.free_port()
        dumpcap = subprocess.Popen(["dumpcap", "-q", "-P", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                line = dumpcap.stderr.readline()
                if not line or "Capturing on" in line:
                    break
            time.sleep(1.0)  # "Capturing on" comes a little before the filter is live
            with peers.recording(upstream, port) as rec:
                expected = traffic(rec.port)
                conns = rec.wait(len(expected))
            time.sleep(0.5)
        finally:
            dumpcap.send_signal(signal.SIGINT)
            dumpcap.wait(10)
    for i, conn in enumerate(conns):
        (out / f"conn{i}.c2s.bin").write_bytes(bytes(conn.c2s))
        (out / f"conn{i}.s2c.bin").write_bytes(bytes(conn.s2c))
    (out / "expected.json").write_text(json.dumps({"port": port, "connections": expected}, indent=1) + "\n")
    pcap.chmod(0o644)
    print(f"{name}: {len(conns)} connection(s), {sum(len(e) for e in expected)} frames, {pcap.stat().st_size} "
          f"bytes of pcap, port {port}")


if __name__ == "__main__":
    for proto in sys.argv[1:] or peers.PEERS:
        capture(proto)
