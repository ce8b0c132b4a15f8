"""The outer frame of Thrift's header transports, shared by ``protocols/thriftheader.py``
(Apache THeader) and ``protocols/ttheader.py`` (Kitex TTHeader), which differ only in the
magic and in the header's coding (wire-formats §3.5, §3.6)::

    LENGTH u32 (bytes after it) | magic u16 | flags u16 | seqid i32
    | header size u16, in 4-byte words | header | Thrift binary message (no inner length)
"""

from construct import Const, Int16ub, Int32sb, Int32ub, Prefixed, Rebuild, Struct, len_, this

from codecgen import REQUEST_ID
from codecgen.ext.thrift.binary import MESSAGE, error_reply

# An empty header: binary protocol (0), no transforms (0), two bytes of padding. Both the
# varint (Apache) and the fixed-width (Kitex) coding read it the same way.
EMPTY_HEADER = b"\x00\x00\x00\x00"


def header_frame(magic: bytes, header_type) -> Struct:
    """The frame, with the header an extension field of ``header_type`` (ThriftHeader or
    KitexHeader): its size is the header size field in words, rebuilt from its length."""
    return Struct(
        "frame" / Prefixed(Int32ub, Struct(
            "magic" / Const(magic),
            "flags" / Int16ub,
            "header_seqid" / Int32sb,
            "header_words" / Rebuild(Int16ub, len_(this.header) // 4),
            "header" / header_type(this.header_words * 4),
            *MESSAGE,
        )),
    )


def header_error_reply() -> dict:
    """flags 0, the request id as both seqids, an empty header, and the Thrift EXCEPTION /
    TApplicationException of ``binary.error_reply``."""
    return {"frame.header_seqid": REQUEST_ID, "frame.header": EMPTY_HEADER, **error_reply("frame.")}
