"""Every name derived from a protocol token, computed in one place."""

from __future__ import annotations

import re

TOKEN_RE = re.compile(r"^[a-z][a-z0-9]*$")
CODEC_NAME_PREFIX = "aeraki.meta_protocol.codec."


def check_token(name: str) -> str | None:
    """Why ``name`` is not a valid protocol token, or None."""
    if not isinstance(name, str) or not name:
        return "the protocol name must be a non-empty string"
    if "-" in name:
        return (f"protocol name {name!r} contains '-': Aeraki splits port names "
                "(tcp-metaprotocol-<name>-...) on '-'; use [a-z][a-z0-9]*")
    if "_" in name:
        return (f"protocol name {name!r} contains '_': it becomes part of Kubernetes and Istio port "
                "names (tcp-metaprotocol-<name>-...), which allow only [a-z0-9-]; use [a-z][a-z0-9]*")
    if not TOKEN_RE.match(name):
        return f"protocol name {name!r} must match [a-z][a-z0-9]*"
    return None


def camel(name: str) -> str:
    """``awesome_rpc`` -> ``AwesomeRpc`` (C++ class and proto message stem)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def codec_name(name: str) -> str:
    """The registered codec name, e.g. ``aeraki.meta_protocol.codec.awesomerpc``."""
    return CODEC_NAME_PREFIX + name


def cpp_files(name: str) -> list[str]:
    """The files of a codec folder (``src/application_protocols/<name>/``) the C++ backend writes."""
    return ["BUILD", f"{name}_codec.proto", "config.h", "config.cc", f"{name}_codec.h", f"{name}_codec.cc"]


def proto_message(name: str) -> str:
    return camel(name) + "Codec"


def port_name(name: str, suffix: str = "server") -> str:
    return f"tcp-metaprotocol-{name}-{suffix}"


def snake(path_part: str) -> str:
    """A field name as a C/Python identifier fragment."""
    return re.sub(r"[^0-9a-zA-Z_]", "_", path_part)
