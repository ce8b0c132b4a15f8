"""A static Envoy bootstrap for ``codecgen image verify``.

One listener on 127.0.0.1 runs the ``meta_protocol_proxy`` network filter with
the protocol's codec (``aeraki.meta_protocol.codec.<name>``) and a static route
table: requests whose routing key equals ``values[0]`` go to cluster ``v1``
(and get ``mutation`` as ``request_mutation``), those with ``values[1]`` go to
``v2`` -- both only when codecgen's mark (``ir.CODEC_ID_KEY``) names the codec,
which proves the generated codec decoded them.  Both clusters are single 127.0.0.1 endpoints.  Admin listens on
127.0.0.1 too.  Nothing here listens or connects anywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from codecgen.errors import UserError
from codecgen.ir import CODEC_ID_KEY
from codecgen.image.context import template_env
from codecgen.naming import check_token, codec_name

__all__ = ["BootstrapPorts", "render_bootstrap", "write_bootstrap", "FILTER_TYPE_URL",
           "FILTER_NAME", "ROUTER_FILTER", "DEFAULT_MUTATION"]

FILTER_NAME = "aeraki.meta_protocol_proxy"
FILTER_TYPE_URL = "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy"
ROUTER_FILTER = "aeraki.meta_protocol.filters.router"
DEFAULT_MUTATION: Tuple[Tuple[str, str], ...] = (("x-codecgen-route", "v1"),)
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class BootstrapPorts:
    listen: int
    v1: int
    v2: int
    admin: int

    def check(self) -> None:
        ports = (self.listen, self.v1, self.v2, self.admin)
        for p in ports:
            if not isinstance(p, int) or not 1 <= p <= 65535:
                raise UserError(f"bootstrap: port {p!r} is not in 1..65535")
        if len(set(ports)) != len(ports):
            raise UserError(f"bootstrap: ports must differ, got {ports}")


def render_bootstrap(protocol: str, key: str, values: Sequence[str], ports: BootstrapPorts,
                     mutation: Optional[Mapping[str, str]] = None) -> str:
    """The bootstrap YAML.  ``values`` = (value routed to v1, value routed to v2)."""
    why = check_token(protocol)
    if why:
        raise UserError(f"bootstrap: {why}")
    if not _KEY_RE.match(key or ""):
        raise UserError(f"bootstrap: routing key {key!r} must match {_KEY_RE.pattern} "
                        "(metadata keys are matched lower-case)")
    if len(values) != 2 or not all(isinstance(v, str) and v for v in values) \
            or values[0] == values[1]:
        raise UserError(f"bootstrap: need two different non-empty routing values, got {values!r}")
    ports.check()
    muts = tuple(sorted(mutation.items())) if mutation is not None else DEFAULT_MUTATION
    for k, _ in muts:
        if not k:
            raise UserError("bootstrap: a request_mutation key must be non-empty")
    routes = [
        {"name": "v1", "value": values[0], "cluster": "v1", "mutation": list(muts)},
        {"name": "v2", "value": values[1], "cluster": "v2", "mutation": []},
    ]
    clusters = [{"name": "v1", "port": ports.v1}, {"name": "v2", "port": ports.v2}]
    return template_env().get_template("bootstrap.yaml.j2").render(
        protocol=protocol, codec_name=codec_name(protocol), mark_key=CODEC_ID_KEY, key=key, routes=routes,
        clusters=clusters, listen_port=ports.listen, admin_port=ports.admin,
        stat_prefix=f"codecgen_{protocol}")


def write_bootstrap(path: Path, *args, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_bootstrap(*args, **kwargs), encoding="utf-8")
    return path
