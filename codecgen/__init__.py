"""codecgen: describe a private RPC wire format once, get an Aeraki MetaProtocol codec.

A spec is a Python module exporting ``PROTOCOL = codecgen.Protocol(...)``.

The names below are loaded on first use (PEP 562), so ``import codecgen.ir`` and the
backends never load construct; only a spec (``codecgen.spec``) does.
"""

from codecgen.version import __version__  # noqa: F401

_SPEC_NAMES = (
    "DIRECTION", "REQUEST", "RESPONSE", "DEFAULT_DROP_KEYS", "DEFAULT_DROP_PREFIXES",
    "ERROR_MESSAGE", "REQUEST_ID", "ErrorCode", "ErrorMessage", "ErrorType", "FromMetadata",
    "HeaderMap", "Heartbeat", "Key", "MessageType", "Protocol", "Render", "RequestId", "When",
)
_LAZY = {**{name: "codecgen.spec" for name in _SPEC_NAMES}, "BoundedVarInt": "codecgen.constructs"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codecgen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
