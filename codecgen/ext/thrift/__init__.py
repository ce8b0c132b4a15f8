"""Thrift for specs: the binary message's fields (``binary``) and the header transports'
variable header as extension fields (``thrift_header``: Apache THeader and Kitex TTHeader)."""

from codecgen.ext.thrift.binary import MAX_FRAME, MESSAGE, error_reply, message_roles, message_types  # noqa: F401
from codecgen.ext.thrift.thrift_header import KitexHeader, ThriftHeader  # noqa: F401
