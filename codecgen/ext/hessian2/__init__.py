"""A small Hessian 2 library: ``hessian2.py`` (Python) and ``hessian2.h``/``.cc`` (C++)."""

from codecgen.ext.hessian2.hessian2 import (  # noqa: F401
    MAX_DEPTH,
    Hessian2Error,
    Reader,
    Writer,
    encode_string,
    encode_string_map,
)
