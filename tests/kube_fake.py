"""An HTTP **fake** of the Kubernetes API server: the parts ``codecgen bridge`` uses, on 127.0.0.1.

No kube-apiserver runs offline here (see the bridge facts, section 5), so the bridge's client is
tested against this fake of the documented API:

- ``GET`` one object, ``GET`` a list with a ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``,
  comma = and) in pages (``limit``, ``continue``: here the next object's name), for ServiceEntries (networking.istio.io v1alpha3/v1beta1/v1), Services (v1) and
  Leases (coordination.k8s.io/v1);
- server-side apply (``PATCH`` ``application/apply-patch+yaml``): ``fieldManager`` required;
  ownership tracked per field (each top-level ``spec`` field, each label and annotation); a
  field another manager owns with a different value is a 409 conflict unless ``force=true``;
  fields the manager applied before and no longer sends are removed; an apply that changes
  nothing does not bump the resourceVersion; an apply to a missing object creates it;
- ``PUT`` (update) with ``metadata.resourceVersion``: a stale one is 409 Conflict; the caller's
  ``fieldManager`` becomes owner of the fields it changed (this is how a test plays Aeraki
  allocating ``spec.addresses``); ``POST`` create (409 AlreadyExists); ``DELETE``;
- every ServiceEntry and Service that would be stored is validated with codecgen's k8s validator
  (JSON Schema + rules); a bad one is 422 Invalid with ``details.causes[].field``;
- injectable faults: an HTTP status (409, 429 with Retry-After, 500...) or a delay longer than
  the client's timeout, for N requests matching a method/kind;
- counters: every request by (method, kind), and successful writes by (verb, kind); also served
  as JSON at ``/fake/counters`` for a fake running in another process.

Simplifications (documented, not hidden): ownership is tracked at the granularity above, not
the full structured-merge-diff field sets; ``managedFields`` is not returned; no watch.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from codecgen.backends.k8s.validate import validate

# plural -> (kind, accepted group/version paths)
PLURALS = {
    "serviceentries": ("ServiceEntry", {"apis/networking.istio.io/v1alpha3", "apis/networking.istio.io/v1beta1",
                                        "apis/networking.istio.io/v1"}),
    "services": ("Service", {"api/v1"}),
    "leases": ("Lease", {"apis/coordination.k8s.io/v1"}),
}
PATH_RE = re.compile(r"^/(api/v1|apis/[^/]+/[^/]+)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?$")
TOKEN = "fake-token"


class Reply(Exception):
    def __init__(self, status: int, reason: str, message: str, causes=None, headers=None):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.causes, self.headers = causes or [], headers or {}

    def body(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": self.message,
               "reason": self.reason, "code": self.status}
        if self.causes:
            out["details"] = {"causes": self.causes}
        return out


def _paths(obj: dict) -> dict[tuple, object]:
    """The owned field paths of ``obj`` and their values."""
    meta = obj.get("metadata") or {}
    out = {("metadata", part, k): v for part in ("labels", "annotations") for k, v in (meta.get(part) or {}).items()}
    out.update({("spec", k): v for k, v in (obj.get("spec") or {}).items()})
    return out


def _set(obj: dict, path: tuple, value) -> None:
    node = obj
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = copy.deepcopy(value)


def _unset(obj: dict, path: tuple) -> None:
    node = obj
    for part in path[:-1]:
        node = node.get(part) or {}
    node.pop(path[-1], None)


def _selector_matches(selector: str, labels: dict) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _parse(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


def _causes(problems: list[str]) -> list[dict]:
    out = []
    for p in problems:  # "<Kind> <name>: <field>: <message>"
        parts = p.split(": ", 2)
        field, message = (parts[1], parts[2]) if len(parts) == 3 else ("", p)
        out.append({"reason": "FieldValueInvalid", "field": field, "message": message})
    return out


class KubeFake:
    def __init__(self, *, token: Optional[str] = TOKEN):
        self.token = token
        self.objects: dict[tuple, dict] = {}
        self.owners: dict[tuple, dict[tuple, str]] = {}
        self.requests: Counter = Counter()   # (method, kind) -> count, every request received
        self.writes: Counter = Counter()     # (verb, kind) -> count, successful writes
        self.faults: list[dict] = []
        self._rv = 0
        self._lock = threading.RLock()
        self.server: Optional[ThreadingHTTPServer] = None

    # ------------------------------------------------------------------ test helpers

    def start(self, tls=None) -> "KubeFake":
        """Serve on 127.0.0.1 (HTTPS when ``tls`` is a server ``ssl.SSLContext``)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one send: no Nagle/delayed-ACK stall per request

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                status, body, headers = fake.handle(self.command, self.path, self.headers, data)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        threading.Thread(target=self.server.serve_forever, name="kube-fake", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def inject(self, status: Optional[int] = None, *, method: Optional[str] = None, kind: Optional[str] = None,
               times: int = 1, delay: float = 0.0) -> None:
        """The next ``times`` requests matching method/kind answer ``status`` (None: served
        normally) after ``delay`` seconds."""
        with self._lock:
            self.faults.append({"status": status, "method": method, "kind": kind, "times": times, "delay": delay})

    def get(self, kind: str, namespace: str, name: str) -> Optional[dict]:
        with self._lock:
            obj = self.objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, kind: str) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(o) for k, o in sorted(self.objects.items()) if k[0] == kind]

    def total_writes(self, kind: Optional[str] = None) -> int:
        """Write *requests* received (PATCH, PUT, POST, DELETE), successful or not."""
        return sum(n for (m, k), n in self.requests.items()
                   if m in ("PATCH", "PUT", "POST", "DELETE") and (kind is None or k == kind))

    def update_as(self, manager: str, kind: str, namespace: str, name: str, mutate) -> dict:
        """Another client's read-modify-write (e.g. Aeraki allocating spec.addresses)."""
        obj = self.get(kind, namespace, name)
        mutate(obj)
        status, body, _ = self.handle("PUT", f"/{_group(kind)}/namespaces/{namespace}/{_plural(kind)}/{name}"
                                      f"?fieldManager={manager}", {"Authorization": f"Bearer {self.token}"},
                                      json.dumps(obj).encode())
        assert status == 200, body
        return body

    def create_as(self, manager: str, obj: dict) -> dict:
        ns = obj["metadata"]["namespace"]
        status, body, _ = self.handle("POST", f"/{_group(obj['kind'])}/namespaces/{ns}/{_plural(obj['kind'])}"
                                      f"?fieldManager={manager}", {"Authorization": f"Bearer {self.token}"},
                                      json.dumps(obj).encode())
        assert status == 201, body
        return body

    # ------------------------------------------------------------------ the API

    def handle(self, method: str, raw_path: str, headers, data: bytes):
        parts = urlsplit(raw_path)
        if parts.path == "/fake/counters":  # for a fake in another process (the benchmark)
            with self._lock:
                return 200, {"requests": {f"{m} {k}": n for (m, k), n in self.requests.items()},
                             "writes": {f"{v} {k}": n for (v, k), n in self.writes.items()}}, {}
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        m = PATH_RE.match(parts.path)
        kind = PLURALS.get(m.group(3), ("?", set()))[0] if m else "?"
        with self._lock:
            self.requests[(method, kind)] += 1
            fault = next((f for f in self.faults if f["times"] > 0 and f["method"] in (None, method)
                          and f["kind"] in (None, kind)), None)
            if fault:
                fault["times"] -= 1
        if fault and fault["delay"]:
            time.sleep(fault["delay"])
        try:
            if self.token and headers.get("Authorization") != f"Bearer {self.token}":
                raise Reply(401, "Unauthorized", "Unauthorized")
            if fault and fault["status"]:
                extra = {"Retry-After": "0"} if fault["status"] == 429 else {}
                raise Reply(fault["status"], {409: "Conflict", 429: "TooManyRequests"}.get(
                    fault["status"], "InternalError"), f"injected {fault['status']}", headers=extra)
            if not m or m.group(3) not in PLURALS or m.group(1) not in PLURALS[m.group(3)][1]:
                raise Reply(404, "NotFound", f"the server could not find the requested resource {parts.path}")
            ns, name = unquote(m.group(2)), unquote(m.group(4)) if m.group(4) else None
            with self._lock:
                status, body = self._dispatch(method, kind, ns, name, query, headers, data)
            return status, body, {}
        except Reply as r:
            return r.status, r.body(), r.headers

    def _dispatch(self, method, kind, ns, name, query, headers, data):
        key = (kind, ns, name)
        if method == "GET" and name is None:
            selector = query.get("labelSelector", "")
            names = [k[2] for k, o in sorted(self.objects.items())
                     if k[0] == kind and k[1] == ns and _selector_matches(selector, o["metadata"].get("labels") or {})]
            start = names.index(query["continue"]) if query.get("continue") in names else 0
            limit = int(query.get("limit") or 0) or len(names)
            items = [copy.deepcopy(self.objects[(kind, ns, n)]) for n in names[start:start + limit]]
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
            meta = {"resourceVersion": str(self._rv)}
            if start + limit < len(names):
                meta["continue"] = names[start + limit]
            return 200, {"kind": f"{kind}List", "metadata": meta, "items": items}
        if method == "GET":
            return 200, copy.deepcopy(self._existing(key))
        if method == "DELETE":
            self._existing(key)
            del self.objects[key]
            self.owners.pop(key, None)
            self.writes[("delete", kind)] += 1
            return 200, {"kind": "Status", "status": "Success"}
        try:  # YAML is the apply format; JSON (a subset) is parsed first because it is faster
            body = _parse(data.decode()) if data else None
        except yaml.YAMLError as exc:
            raise Reply(400, "BadRequest", f"body: {exc}") from None
        if not isinstance(body, dict) or body.get("kind") != kind:
            raise Reply(400, "BadRequest", f"body must be a {kind} object")
        meta = body.setdefault("metadata", {})
        meta.setdefault("namespace", ns)
        manager = query.get("fieldManager") or "unknown"
        if method == "POST":
            key = (kind, ns, meta.get("name"))
            if key in self.objects:
                raise Reply(409, "AlreadyExists", f"{kind} {meta.get('name')!r} already exists")
            return 201, self._store(key, body, {p: manager for p in _paths(body)}, "create")
        if meta.get("name") != name or meta.get("namespace") != ns:
            raise Reply(400, "BadRequest", "the name/namespace of the body does not match the URL")
        if method == "PUT":
            current = self._existing(key)
            if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Reply(409, "Conflict", f"Operation cannot be fulfilled on {kind} {name!r}: the object "
                                             f"has been modified; please apply your changes to the latest version")
            old, new = _paths(current), _paths(body)
            owners = {p: o for p, o in self.owners.get(key, {}).items() if p in new}
            owners.update({p: manager for p, v in new.items() if old.get(p, object()) != v})
            return 200, self._store(key, body, owners, "update")
        if method == "PATCH":
            if headers.get("Content-Type") != "application/apply-patch+yaml":
                raise Reply(415, "UnsupportedMediaType", "only server-side apply is served by this fake")
            if not query.get("fieldManager"):
                raise Reply(400, "BadRequest", "fieldManager is required for apply requests")
            return 200, self._apply(key, body, manager, query.get("force") == "true")
        raise Reply(405, "MethodNotAllowed", method)

    def _existing(self, key) -> dict:
        if key not in self.objects:
            raise Reply(404, "NotFound", f"{key[0]} {key[2]!r} not found")
        return self.objects[key]

    def _apply(self, key, body, manager, force):
        current = self.objects.get(key)
        if current is None:
            return self._store(key, body, {p: manager for p in _paths(body)}, "apply")
        rv = body["metadata"].get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise Reply(409, "Conflict", "the object has been modified")
        owners = dict(self.owners.get(key, {}))
        have, want = _paths(current), _paths(body)
        conflicts = [p for p, v in want.items() if owners.get(p, manager) != manager and have.get(p) != v]
        if conflicts and not force:
            raise Reply(409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s)", causes=[
                {"reason": "FieldManagerConflict", "field": "." + ".".join(p),
                 "message": f'conflict with "{owners[p]}"'} for p in conflicts])
        merged = copy.deepcopy(current)
        for p, o in list(owners.items()):
            if o == manager and p not in want:
                _unset(merged, p)
                del owners[p]
        for p, v in want.items():
            _set(merged, p, v)
            owners[p] = manager
        for k, v in body.items():
            if k not in ("metadata", "spec", "status"):
                merged[k] = v
        if merged == current:
            self.owners[key] = owners
            return copy.deepcopy(current)
        return self._store(key, merged, owners, "apply")

    def _store(self, key, obj, owners, verb):
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", {"ServiceEntry": "networking.istio.io/v1beta1", "Service": "v1",
                                      "Lease": "coordination.k8s.io/v1"}[key[0]])
        meta = obj["metadata"]
        meta.pop("managedFields", None)
        if key[0] in ("ServiceEntry", "Service"):
            checked = copy.deepcopy(obj)
            for f in ("resourceVersion", "uid", "creationTimestamp", "generation"):
                checked["metadata"].pop(f, None)
            checked.pop("status", None)
            problems = validate(checked)
            if problems:
                raise Reply(422, "Invalid", f"{key[0]} {key[2]!r} is invalid: {problems[0]}", _causes(problems))
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("uid", f"uid-{self._rv}")
        self.objects[key] = obj
        self.owners[key] = owners
        self.writes[(verb, key[0])] += 1
        return copy.deepcopy(obj)


def _plural(kind: str) -> str:
    return next(p for p, (k, _) in PLURALS.items() if k == kind)


def _group(kind: str) -> str:
    return sorted(PLURALS[_plural(kind)][1])[-1]  # v1beta1 for ServiceEntry


if __name__ == "__main__":  # a standalone fake for the benchmark: prints its URL, serves until stdin closes
    import sys

    fake = KubeFake(token=None).start()
    print(fake.url, flush=True)
    sys.stdin.read()
    fake.stop()
