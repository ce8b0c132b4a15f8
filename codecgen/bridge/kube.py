"""A small Kubernetes API client (standard library only): what the bridge uses, no more.

Connection from a kubeconfig (token, token file, client certificate, CA, current or named
context) or the in-cluster service account.  Verbs: get, list with a label selector, server-side
apply (``application/apply-patch+yaml``, field manager ``codecgen-bridge``, ``force=true``: the
fields the bridge applies are its own by definition, and a user who once edited one must not
freeze the entry; fields it never sends, such as ``spec.addresses`` that Aeraki allocates, stay
with their managers), create, replace (with resourceVersion, for the Lease) and delete.
409/429/5xx and timeouts are retried with exponential backoff (Retry-After honoured); other
errors raise :class:`ApiError`, whose ``describe()`` names the object and the field.

Why not the ``kubernetes`` package: server-side apply of custom resources there goes through the
dynamic client and its discovery round trips; five verbs over HTTP/1.1 keep-alive are shorter to
read and add no dependency.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import quote, urlencode, urlsplit

from codecgen.errors import UserError

FIELD_MANAGER = "codecgen-bridge"
IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})

# kind -> (API group path, plural)
RESOURCES = {
    "ServiceEntry": ("/apis/networking.istio.io/v1beta1", "serviceentries"),
    "Service": ("/api/v1", "services"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}


class ApiError(Exception):
    def __init__(self, status: int, body: Mapping, what: str):
        self.status = status
        self.body = body if isinstance(body, Mapping) else {}
        self.what = what
        super().__init__(self.describe())

    @property
    def reason(self) -> str:
        return str(self.body.get("reason") or "")

    def describe(self) -> str:
        causes = (self.body.get("details") or {}).get("causes") or []
        fields = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes)
        msg = fields or self.body.get("message") or f"HTTP {self.status}"
        return f"{self.what}: {msg} (HTTP {self.status}{' ' + self.reason if self.reason else ''})"


@dataclass
class Connection:
    server: str
    ca_file: Optional[str] = None
    insecure: bool = False
    token: Optional[str] = None
    token_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    temporary: tuple = ()   # files written from *-data fields, removed once the TLS context is built

    def bearer(self) -> Optional[str]:
        if self.token_file:  # re-read: bound service-account tokens rotate
            return Path(self.token_file).read_text().strip()
        return self.token


def _materialize(data_b64: Optional[str], path: Optional[str], base: Path, what: str) -> Optional[str]:
    if data_b64:
        fd, name = tempfile.mkstemp(prefix="codecgen-kube-")
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data_b64))
        return name
    if path:
        full = (base / path) if not os.path.isabs(path) else Path(path)
        if not full.is_file():
            raise UserError(f"kubeconfig: {what} {full}: no such file")
        return str(full)
    return None


def from_kubeconfig(path: str, context: Optional[str] = None) -> Connection:
    import yaml

    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"--kubeconfig {path}: {getattr(exc, 'strerror', None) or exc}") from None

    def named(section: str, name: str) -> dict:
        for item in (doc or {}).get(section) or []:
            if item.get("name") == name:
                return item.get(section[:-1]) or {}
        raise UserError(f"--kubeconfig {path}: no {section[:-1]} named {name!r}")

    ctx_name = context or (doc or {}).get("current-context")
    if not ctx_name:
        raise UserError(f"--kubeconfig {path}: no current-context (give --context)")
    ctx = named("contexts", ctx_name)
    cluster, user = named("clusters", ctx.get("cluster")), named("users", ctx.get("user"))
    if user.get("exec") or user.get("auth-provider"):
        raise UserError(f"--kubeconfig {path}: user {ctx.get('user')!r} uses an exec/auth-provider "
                        f"plugin, which the bridge does not run; use a token or a client certificate")
    base = file.parent
    ca = _materialize(cluster.get("certificate-authority-data"), cluster.get("certificate-authority"),
                      base, "certificate-authority")
    cert = _materialize(user.get("client-certificate-data"), user.get("client-certificate"),
                        base, "client-certificate")
    key = _materialize(user.get("client-key-data"), user.get("client-key"), base, "client-key")
    temporary = tuple(path for path, field in ((ca, cluster.get("certificate-authority-data")),
                                               (cert, user.get("client-certificate-data")),
                                               (key, user.get("client-key-data"))) if field)
    return Connection(server=cluster.get("server", ""), ca_file=ca,
                      insecure=bool(cluster.get("insecure-skip-tls-verify")), token=user.get("token"),
                      token_file=str(base / user["tokenFile"]) if user.get("tokenFile") else None,
                      cert_file=cert, key_file=key, temporary=temporary)


def in_cluster() -> Connection:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not (IN_CLUSTER / "token").is_file():
        raise UserError("no --kubeconfig, no $KUBECONFIG or ~/.kube/config, and not running in a pod")
    host = f"[{host}]" if ":" in host else host
    return Connection(server=f"https://{host}:{port or 443}", ca_file=str(IN_CLUSTER / "ca.crt"),
                      token_file=str(IN_CLUSTER / "token"))


def load_connection(kubeconfig: Optional[str] = None, context: Optional[str] = None) -> Connection:
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    if path is None and Path("~/.kube/config").expanduser().is_file() and not os.environ.get(
            "KUBERNETES_SERVICE_HOST"):
        path = str(Path("~/.kube/config").expanduser())
    return from_kubeconfig(path, context) if path else in_cluster()


class Kube:
    """The client; thread-safe (one keep-alive connection per thread)."""

    def __init__(self, conn: Connection, *, timeout: float = 10.0, retries: int = 6,
                 backoff: float = 0.2, max_backoff: float = 5.0):
        self.conn = conn
        parts = urlsplit(conn.server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"kubeconfig: server {conn.server!r} is not an http(s) URL")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self._local = threading.local()
        try:
            self._ssl = self._context() if self._https else None
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"kubeconfig: TLS setup for {conn.server}: {exc}") from None
        finally:
            for path in conn.temporary:
                Path(path).unlink(missing_ok=True)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.conn.ca_file)
        if self.conn.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.conn.cert_file:
            ctx.load_cert_chain(self.conn.cert_file, self.conn.key_file)
        return ctx

    def _connection(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            if self._https:
                c = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._ssl)
            else:
                c = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = c
        return c

    def _drop_connection(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def request(self, method: str, path: str, what: str, body=None, content_type: str = "application/json",
                retry_conflict: bool = True):
        """JSON answer of ``method path``, retried on 409/429/5xx and timeouts; 404 -> None."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        token = self.conn.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                c = self._connection()
                c.request(method, self._prefix + path, body=data, headers=headers)
                resp = c.getresponse()
                raw = resp.read()
                status, retry_after = resp.status, resp.getheader("Retry-After")
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                self._drop_connection()
                if last:
                    raise ApiError(0, {"message": f"{type(exc).__name__}: {exc}"}, what) from None
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {"message": raw[:200].decode("utf-8", "replace")}
            if status < 300:
                return answer
            if status == 404 and method in ("GET", "DELETE"):
                return None
            retryable = status in RETRY_STATUSES and (retry_conflict or status != 409)
            if not retryable or last:
                raise ApiError(status, answer, what)
            wait = delay
            if retry_after and retry_after.isdigit():
                wait = min(float(retry_after), self.max_backoff)
            time.sleep(wait)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ verbs

    @staticmethod
    def path(kind: str, namespace: str, name: Optional[str] = None, **query) -> str:
        group, plural = RESOURCES[kind]
        out = f"{group}/namespaces/{quote(namespace)}/{plural}"
        if name:
            out += "/" + quote(name)
        q = {k: v for k, v in query.items() if v is not None}
        return out + ("?" + urlencode(q) if q else "")

    def get(self, kind: str, namespace: str, name: str) -> Optional[dict]:
        return self.request("GET", self.path(kind, namespace, name), f"{kind} {namespace}/{name}")

    def list(self, kind: str, namespace: str, selector: Optional[str] = None, page: int = 500) -> list[dict]:
        """Every object of ``kind`` in ``namespace`` matching ``selector``, read in pages of ``page``
        (``limit``/``continue``), so that no single answer holds every object."""
        items, token = [], None
        while True:
            answer = self.request("GET", self.path(kind, namespace, labelSelector=selector, limit=page,
                                                   **{"continue": token}), f"{kind} list in {namespace}") or {}
            for item in answer.get("items") or []:
                item.setdefault("kind", kind)  # list items carry no apiVersion/kind
                items.append(item)
            token = (answer.get("metadata") or {}).get("continue")
            if not token:
                return items

    def apply(self, obj: Mapping) -> dict:
        meta = obj["metadata"]
        return self.request("PATCH", self.path(obj["kind"], meta["namespace"], meta["name"],
                                               fieldManager=FIELD_MANAGER, force="true"),
                            f"{obj['kind']} {meta['namespace']}/{meta['name']}", body=obj,
                            content_type="application/apply-patch+yaml")

    def create(self, obj: Mapping) -> dict:
        meta = obj["metadata"]
        return self.request("POST", self.path(obj["kind"], meta["namespace"], fieldManager=FIELD_MANAGER),
                            f"{obj['kind']} {meta['namespace']}/{meta['name']}", body=obj, retry_conflict=False)

    def replace(self, obj: Mapping) -> dict:
        """PUT; a stale ``metadata.resourceVersion`` raises ApiError 409 at once (not retried)."""
        meta = obj["metadata"]
        return self.request("PUT", self.path(obj["kind"], meta["namespace"], meta["name"],
                                             fieldManager=FIELD_MANAGER),
                            f"{obj['kind']} {meta['namespace']}/{meta['name']}", body=obj, retry_conflict=False)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return self.request("DELETE", self.path(kind, namespace, name), f"{kind} {namespace}/{name}") is not None
