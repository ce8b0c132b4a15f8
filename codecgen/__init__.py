"""codecgen: describe a private RPC wire format once, get an Aeraki MetaProtocol codec.

A spec is a Python module exporting ``PROTOCOL = codecgen.Protocol(...)``.
"""

from codecgen.spec import (  # noqa: F401
    DIRECTION,
    REQUEST,
    RESPONSE,
    DEFAULT_DROP_KEYS,
    DEFAULT_DROP_PREFIXES,
    ERROR_MESSAGE,
    REQUEST_ID,
    ErrorCode,
    ErrorMessage,
    ErrorType,
    FromMetadata,
    HeaderMap,
    Heartbeat,
    Key,
    MessageType,
    Protocol,
    Render,
    RequestId,
    When,
)
from codecgen.constructs import BoundedVarInt  # noqa: F401
from codecgen.version import __version__  # noqa: F401
