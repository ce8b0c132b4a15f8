"""``codecgen replay SPEC PCAP [--port P] [--engine python|cpp]``.

Prints one JSON line per frame, in capture time order::

    {"stream": 0, "direction": "request", "offset": 0, "time": 1700000000.123,
     "message_type": "Request", "request_id": 1, ..., "metadata": {...}}

then, in the same order, an ``incomplete`` line for a direction whose capture ends inside a
frame, a ``missing`` line for a hole in the capture (segments the capture lost: decoding of
that direction stops there, with a warning on stderr), and last a ``summary`` line.  Exit 0 when every frame decodes; 1 when a frame fails (each
direction stops at its first failure; an ``error`` line gives stream, direction and byte
offset, and stderr names the first one); 2 for bad input (spec, file, flags).
"""

from __future__ import annotations

import json
import sys

from codecgen.errors import UserError

DIRECTIONS = (("request", "c2s", "client", "server"), ("response", "s2c", "server", "client"))


def add_parser(sub) -> None:
    p = sub.add_parser(
        "replay", help="decode the TCP streams of a pcap with the codec (client->server as requests)",
        description="Reassemble the TCP streams of a capture (out-of-order and retransmitted segments "
                    "are put in place), decode client->server bytes as requests and server->client bytes "
                    "as responses, print one JSON line per frame and a summary. Exit 1 at a frame that "
                    "does not decode or when no TCP stream matches, 2 for bad input.")
    p.add_argument("spec", help="the protocol spec")
    p.add_argument("pcap", help="a capture file (pcap or pcapng), e.g. from tcpdump -w")
    p.add_argument("--port", type=int, help="the server's TCP port: only streams on it are decoded, and the "
                                            "side on it is the server (default: the side that sent the "
                                            "SYN is the client; without a SYN, the lower port is the server)")
    p.add_argument("--engine", choices=("python", "cpp"), default="python")
    p.add_argument("--codec-dir", help="with --engine cpp: a (hand-edited) codec folder to compile")
    p.set_defaults(func=replay_main)


def _endpoint(ep) -> str:
    host, port = ep
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def replay(spec: str, pcap: str, port=None, engine: str = "python", codec_dir=None, out=None) -> int:
    from codecgen.frontend import load
    from codecgen.engines import Engine
    from codecgen.replay.tcp import read_streams

    out = out or sys.stdout
    if port is not None and not 0 < port < 65536:
        raise UserError(f"--port {port}: not a TCP port (1..65535)")
    proto = load(spec)
    streams = read_streams(pcap, port)
    runner = Engine(proto, engine, codec_dir)
    lines = []  # (time, stream, direction order, offset, object)
    summary = {"streams": len(streams), "frames": 0, "requests": 0, "responses": 0,
               "bytes": 0, "incomplete": 0, "errors": 0, "engine": engine}
    first_error = None
    try:
        for stream in streams:
            for order, (direction, attr, src, dst) in enumerate(DIRECTIONS):
                assembled = getattr(stream, attr)
                data = assembled.data
                summary["bytes"] += len(data)
                result = runner.decode(data, direction)
                for offset, fields in zip(result.offsets, result.frames):
                    obj = {"stream": stream.index, "direction": direction, "offset": offset,
                           "time": assembled.time_at(offset + fields["frame_size"] - 1)}
                    obj.update(fields)
                    lines.append((obj["time"], stream.index, order, offset, obj))
                    summary["frames"] += 1
                    summary["requests" if direction == "request" else "responses"] += 1
                where = {"stream": stream.index, "direction": direction,
                         src: _endpoint(getattr(stream, src)), dst: _endpoint(getattr(stream, dst))}
                if result.error is not None:
                    summary["errors"] += 1
                    obj = dict(where, offset=result.error_offset, error=result.error,
                               time=assembled.time_at(result.error_offset))
                    lines.append((obj["time"], stream.index, order, result.error_offset, obj))
                    key = (obj["time"] if obj["time"] is not None else float("inf"), stream.index, order)
                    if first_error is None or key < first_error[0]:
                        first_error = (key, obj)
                    continue
                tail = result.held
                if assembled.gap is not None:
                    gap_at, missing = assembled.gap
                    obj = dict(where, offset=gap_at, missing=missing,
                               time=assembled.time_at(max(0, gap_at - 1)))
                    lines.append((obj["time"], stream.index, order, gap_at, obj))
                    summary["gaps"] = summary.get("gaps", 0) + 1
                if tail:
                    obj = dict(where, offset=len(data) - tail, incomplete=tail,
                               time=assembled.time_at(len(data) - 1))
                    lines.append((obj["time"], stream.index, order, len(data) - tail, obj))
                    summary["incomplete"] += 1
    finally:
        runner.close()
    lines.sort(key=lambda x: (x[0] if x[0] is not None else float("inf"), x[1], x[2], x[3]))
    for *_, obj in lines:
        print(json.dumps(obj), file=out)
    print(json.dumps({"summary": summary}), file=out)
    if summary.get("gaps"):
        print(f"codecgen: replay: warning: {summary['gaps']} direction(s) have a hole (segments missing from "
              "the capture); their decoding stops at the hole", file=sys.stderr)
    if not streams:
        where = f"on port {port}" if port is not None else "at all"
        print(f"codecgen: replay: {pcap}: no TCP stream {where}: nothing decoded", file=sys.stderr)
        return 1
    if first_error is not None:
        e = first_error[1]
        print(f"codecgen: replay: stream {e['stream']} {e['direction']} at byte {e['offset']}: {e['error']}",
              file=sys.stderr)
        return 1
    return 0


def replay_main(args) -> int:
    return replay(args.spec, args.pcap, port=args.port, engine=args.engine, codec_dir=args.codec_dir)
