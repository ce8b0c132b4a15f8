"""Dubbo's registry layout, shared by the ZooKeeper and etcd sources.

Dubbo registers every provider under ``/<root>/<interface>/providers/<node>`` where ``<node>`` is
the provider URL quoted whole (``quote(url, safe="")``), e.g.
``dubbo://10.0.0.7:20880/org.demo.Greeter?application=demo&group=blue&side=provider&version=1.0``.
The node name is unquoted exactly once; the URL's structure (scheme, host, port, path) is read
with :func:`urllib.parse.urlsplit`; the parameters are split on ``&`` and the first ``=`` without
a second decoding, as Dubbo's own ``URL.valueOf`` does (a value keeps any ``%`` or ``+`` it has).

Service key: ``interface[:group][:version]``, positional so it is never ambiguous: the group
slot is kept (empty) when only a version exists. ``org.demo.Greeter``, ``org.demo.Greeter:blue``,
``org.demo.Greeter::1.0``, ``org.demo.Greeter:blue:1.0``. The Service's ``attributes`` carry
``interface``, ``group`` and ``version`` (those present) for the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import unquote, urlsplit

from codecgen.bridge.model import Instance

#: Children of the root that are not services (Dubbo's configuration and metadata centres).
NON_SERVICE_CHILDREN = frozenset({"config", "metadata", "mapping"})
#: Schemes that never name a provider (consumers, routing and override rules, empty markers).
NON_PROVIDER_SCHEMES = frozenset({"consumer", "route", "override", "empty", "configurator",
                                  "routers", "configurators"})


@dataclass(frozen=True)
class Provider:
    """One provider parsed from its registry node name."""

    interface: str
    group: Optional[str]
    version: Optional[str]
    instance: Instance

    @property
    def key(self) -> str:
        return service_key(self.interface, self.group, self.version)

    @property
    def attributes(self) -> Dict[str, str]:
        attrs = {"interface": self.interface}
        if self.group:
            attrs["group"] = self.group
        if self.version:
            attrs["version"] = self.version
        return attrs


def service_key(interface: str, group: Optional[str], version: Optional[str]) -> str:
    if version:
        return f"{interface}:{group or ''}:{version}"
    return f"{interface}:{group}" if group else interface


def parse_params(query: str) -> Dict[str, str]:
    """Dubbo URL parameters: ``k=v`` pairs split on ``&``; no second percent-decoding."""
    params: Dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if key:
            params[key] = value
    return params


def parse_provider(node: str, interface: str) -> Optional[Provider]:
    """The provider a ``providers/`` child names, or None when the node is not a provider
    (a consumer, a rule, an unparsable URL). ``interface`` is the directory the node is in:
    Dubbo consumers subscribe by it, so it is the service's identity even if the URL's path
    differs (e.g. a ``tri://`` path carrying a context path)."""
    url = unquote(node)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or scheme in NON_PROVIDER_SCHEMES or not parts.hostname or port is None:
        return None
    params = parse_params(parts.query)
    if params.get("category", "providers") != "providers":
        return None
    if params.get("side", "provider") != "provider":
        return None
    weight = _int(params.get("weight"))
    healthy = params.get("enabled", "true").lower() != "false" and \
        params.get("disabled", "false").lower() != "true"
    instance = Instance(address=parts.hostname, port=port, protocol=scheme, labels=params,
                        weight=weight, healthy=healthy)
    return Provider(interface=interface, group=params.get("group") or None,
                    version=params.get("version") or None, instance=instance)


def split_path(path: str, root: str) -> Optional[Tuple[str, str]]:
    """``(interface, node)`` for ``<root>/<interface>/providers/<node>``, else None."""
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    parts = path[len(prefix):].split("/")
    if len(parts) != 3 or parts[1] != "providers" or not parts[0] or not parts[2]:
        return None
    if parts[0] in NON_SERVICE_CHILDREN:
        return None
    return parts[0], parts[2]


def _int(text: Optional[str]) -> Optional[int]:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
