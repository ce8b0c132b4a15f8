"""The Dubbo 2 body extension (``DubboBody``), built on ``codecgen.ext.hessian2``."""

from codecgen.ext.dubbo.dubbo_body import DubboBody, parameter_count  # noqa: F401
