"""Tars for specs: a RequestPacket/ResponsePacket in Tars' TLV coding as an extension field."""

from codecgen.ext.tars.tars_packet import TarsPacket  # noqa: F401
