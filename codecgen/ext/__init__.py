"""Extension field types, implemented in Python and C++ (see ``codecgen.ext.base``).

Shipped extensions: ``codecgen.ext.hessian2`` (the Hessian 2 library both sides use) and
``codecgen.ext.dubbo`` (``DubboBody``: a Dubbo 2 body, Hessian 2 serialized).
"""

from codecgen.ext.base import ExtensionError, ExtensionField, ExtValue  # noqa: F401
