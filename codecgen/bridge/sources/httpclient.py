"""A small JSON-over-HTTP client for the registry sources (standard library only).

Every failure -- unreachable server, timeout, an error status, a body that is not JSON -- is a
:class:`SourceError` naming the request. Open connections are tracked so that ``close()`` can
abort a blocking query or a watch stream from another thread at once.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode

from codecgen.bridge.model import SourceError

Query = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], None]


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: Any):
        self.status = status
        self.headers = headers
        self.body = body


class HttpClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0, headers: Mapping[str, str] = ()):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.headers = dict(headers)
        self._open: set = set()
        self._lock = threading.Lock()
        self._closed = False

    def url(self, path: str, query: Query = None) -> str:
        return f"http://{self.host}:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")

    def get(self, path: str, query: Query = None, timeout: Optional[float] = None,
            ok: Sequence[int] = (200,)) -> Response:
        return self.request("GET", path, query, None, timeout, ok)

    def post(self, path: str, body: Any, timeout: Optional[float] = None) -> Response:
        return self.request("POST", path, None, body, timeout)

    def request(self, method: str, path: str, query: Query = None, body: Any = None,
                timeout: Optional[float] = None, ok: Sequence[int] = (200,)) -> Response:
        url = self.url(path, query)
        conn, resp = self._send(method, path, query, body, timeout)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(f"{method} {url}: {exc or type(exc).__name__}") from None
        finally:
            self._forget(conn)
        if resp.status not in ok:
            text = data.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(f"{method} {url}: HTTP {resp.status}"
                              + (f": {text[0][:200]}" if text else ""))
        try:
            parsed = json.loads(data) if data.strip() else None
        except ValueError:
            raise SourceError(f"{method} {url}: answer is not JSON") from None
        return Response(resp.status, resp.headers, parsed)

    def stream(self, method: str, path: str, body: Any = None, timeout: Optional[float] = None):
        """An open response to read line by line (``readline``); ``done(resp)`` releases it."""
        conn, resp = self._send(method, path, None, body, timeout)
        if resp.status != 200:
            self._forget(conn)
            raise SourceError(f"{method} {self.url(path)}: HTTP {resp.status}")
        resp.bridge_conn = conn
        return resp

    def done(self, resp) -> None:
        self._forget(resp.bridge_conn)

    def close(self) -> None:
        """Abort every open request (a blocked reader gets an error at once)."""
        with self._lock:
            self._closed = True
            conns = list(self._open)
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()

    def _send(self, method, path, query, body, timeout):
        url = self.url(path, query)
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout if timeout is None else timeout)
        with self._lock:
            if self._closed:
                raise SourceError(f"{method} {url}: source closed")
            self._open.add(conn)
        target = path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, target, body=payload, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._forget(conn)
            raise SourceError(f"{method} {url}: {exc or type(exc).__name__}") from None

    def _forget(self, conn) -> None:
        with self._lock:
            self._open.discard(conn)
        conn.close()
