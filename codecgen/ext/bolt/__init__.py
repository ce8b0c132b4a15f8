"""SOFA Bolt for specs: the header map of a Bolt command (length-prefixed key/value strings)."""

from codecgen.ext.bolt.bolt_header import BoltHeader  # noqa: F401
