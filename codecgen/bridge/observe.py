"""Structured (JSON line) logs, Prometheus metrics, and the /healthz /readyz /metrics server."""

from __future__ import annotations

import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

log = logging.getLogger("codecgen.bridge")

# name -> (type, help)
METRICS = {
    "codecgen_bridge_services": ("gauge", "Services a source reports (last good snapshot)."),
    "codecgen_bridge_endpoints": ("gauge", "Healthy instances a source reports (last good snapshot)."),
    "codecgen_bridge_refused_services": ("gauge", "Services not mapped, by reason (unknown-protocol, invalid)."),
    "codecgen_bridge_writes_total": ("counter", "Kubernetes API writes, by kind and verb."),
    "codecgen_bridge_deletions_total": ("counter", "Entries deleted after their service disappeared for the grace period."),
    "codecgen_bridge_held": ("gauge", "Objects whose emptying or deletion waits for the grace period."),
    "codecgen_bridge_errors_total": ("counter", "Errors, by kind (source, api, invalid)."),
    "codecgen_bridge_source_up": ("gauge", "1 when the source's last read succeeded, 0 when it failed."),
    "codecgen_bridge_last_sync_timestamp_seconds": ("gauge", "Unix time of the last successful read, by source."),
    "codecgen_bridge_leader": ("gauge", "1 while this replica holds the lease."),
}


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple, float]] = {name: {} for name in METRICS}

    def inc(self, name: str, amount: float = 1, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[name][key] = self._values[name].get(key, 0) + amount

    def set(self, name: str, value: float, **labels) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def get(self, name: str, **labels) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, (kind, help_text) in METRICS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                for key, value in sorted(self._values[name].items()):
                    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                    lines.append(f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "msg": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        return json.dumps(out, sort_keys=False, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def event(level: int, msg: str, **fields) -> None:
    log.log(level, msg, extra={"fields": fields})


class HealthServer:
    """``/healthz`` (the process runs), ``/readyz`` (``ready()``), ``/metrics``; on its own thread."""

    def __init__(self, address: str, port: int, metrics: Metrics, ready: Callable[[], bool]):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/healthz":
                    self._send(200, "ok\n")
                elif self.path == "/readyz":
                    ok = owner.ready()
                    self._send(200 if ok else 503, "ready\n" if ok else "not ready\n")
                elif self.path == "/metrics":
                    self._send(200, owner.metrics.render(), "text/plain; version=0.0.4")
                else:
                    self._send(404, "not found\n")

            def _send(self, status, text, ctype="text/plain"):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.metrics, self.ready = metrics, ready
        self.server = ThreadingHTTPServer((address, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="bridge-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
