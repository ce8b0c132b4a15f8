"""Extension field types, implemented in Python and C++ (see ``codecgen.ext.base``).

Shipped extensions: ``codecgen.ext.hessian2`` (the Hessian 2 library both sides use) and
``codecgen.ext.dubbo`` (``DubboBody``: a Dubbo 2 body, Hessian 2 serialized).

The names below load on first use, so ``codecgen.ext.sources`` can be imported without
construct.
"""

_BASE_NAMES = ("ExtensionError", "ExtensionField", "ExtValue")


def __getattr__(name: str):
    if name not in _BASE_NAMES:
        raise AttributeError(f"module 'codecgen.ext' has no attribute {name!r}")
    from codecgen.ext import base

    return getattr(base, name)
