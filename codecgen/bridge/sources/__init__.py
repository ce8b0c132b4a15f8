"""Registry sources, one module per URL scheme.

``codecgen/bridge/sources/<scheme>.py`` defines ``from_url(url, name=None) -> Source`` (see
:mod:`codecgen.bridge.model`); it raises :class:`codecgen.errors.UserError` naming the URL when
the URL is malformed. Modules are imported only when their scheme is used, so a registry's client
library is needed only by those who use that registry.
"""

from __future__ import annotations

import importlib
from typing import Optional
from urllib.parse import urlsplit

from codecgen.bridge.model import Source
from codecgen.errors import UserError

SCHEMES = ("zookeeper", "etcd", "consul", "nacos", "polaris", "file")


def open_source(url: str, name: Optional[str] = None) -> Source:
    """The source for ``url`` (``zookeeper://127.0.0.1:2181/dubbo``, ``file:///srv/reg.yaml``...)."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise UserError(f"--source {url}: unknown registry scheme {scheme or '(none)'!r}; "
                        f"use one of {', '.join(s + '://' for s in SCHEMES)}")
    module = importlib.import_module(f"{__name__}.{scheme}")
    return module.from_url(url, name)
