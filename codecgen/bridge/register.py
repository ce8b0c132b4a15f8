"""``bridge register``: put one provider into ZooKeeper as a Dubbo provider does.

The node is ``<root>/<interface>/providers/<provider URL quoted whole>`` (Dubbo's layout, see
:mod:`codecgen.bridge.dubbo`), its data the URL. Ephemeral by default: the command keeps its
session, checks the node every ``interval`` seconds and creates it again after a lost session
(as a Dubbo provider re-registers), and deletes it on SIGTERM/SIGINT. ``--persistent`` writes
a persistent node and exits. The URL must be one the bridge itself reads back as a provider.
"""

from __future__ import annotations

import threading
from urllib.parse import quote, urlsplit

from codecgen.bridge import dubbo
from codecgen.bridge.sources import urlparts
from codecgen.errors import UserError


def provider_path(root: str, url: str) -> str:
    """Where Dubbo registers ``url`` under ``root``; a UserError naming the URL if the bridge
    would not read it back as a provider."""
    interface = urlsplit(url).path.strip("/")
    node = quote(url, safe="")
    if not interface or "/" in interface or dubbo.parse_provider(node, interface) is None:
        raise UserError(f"--url {url}: not a provider URL (SCHEME://HOST:PORT/INTERFACE[?k=v&...], "
                        f"side=provider)")
    return f"{root.rstrip('/')}/{interface}/providers/{node}"


def register(registry: str, url: str, *, persistent: bool, stop: threading.Event, interval: float = 2.0,
             log=print) -> str:
    """Register ``url``; for an ephemeral node, hold it until ``stop`` is set, then delete it."""
    if not registry.startswith("zookeeper://"):
        raise UserError(f"bridge register {registry}: only zookeeper://HOST:PORT[/root] is supported")
    parts = urlparts.parse(registry, 2181)
    path = provider_path(parts.path.rstrip("/") or "/dubbo", url)
    try:
        from kazoo.client import KazooClient
        from kazoo.exceptions import KazooException, NodeExistsError
        from kazoo.handlers.threading import KazooTimeoutError
    except ImportError:
        raise UserError("bridge register needs kazoo (pip install 'codecgen[bridge]')") from None
    client = KazooClient(hosts=f"{parts.host}:{parts.port}", timeout=10)
    try:
        client.start(timeout=30)
    except KazooTimeoutError:
        raise UserError(f"bridge register {registry}: no ZooKeeper answered within 30s") from None
    try:
        directory = path.rsplit("/", 1)[0]
        while True:
            try:
                if client.exists(path) is None:
                    client.ensure_path(directory)
                    client.ensure_path(directory.rsplit("/", 1)[0] + "/configurators")
                    try:
                        client.create(path, url.encode(), ephemeral=not persistent)
                    except NodeExistsError:
                        pass
                    log(f"bridge register: {'persistent' if persistent else 'ephemeral'} {path}")
            except (KazooException, KazooTimeoutError) as exc:
                log(f"bridge register: {type(exc).__name__}; retrying in {interval:g}s")
            if persistent or stop.wait(interval):
                break
        if not persistent:
            try:
                client.delete(path)
            except KazooException:
                pass
    finally:
        client.stop()
        client.close()
    return path
