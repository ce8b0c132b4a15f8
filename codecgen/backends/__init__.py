"""Backends read only ``codecgen.ir`` and keep their templates beside them."""
