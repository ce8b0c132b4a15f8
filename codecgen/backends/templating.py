"""The one jinja2 setup every backend uses: strict, package-relative, deterministic."""

from __future__ import annotations

import json
from functools import lru_cache

import jinja2


@lru_cache(maxsize=None)
def environment(package: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "."),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["tojson"] = lambda v: json.dumps(v)
    return env
