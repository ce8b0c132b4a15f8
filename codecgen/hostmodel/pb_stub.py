"""Stand-ins for the protoc / protoc-gen-validate headers a codec's config.h includes.

A real build generates ``src/application_protocols/<name>/<name>_codec.pb.h`` and
``..._codec.pb.validate.h`` from ``<name>_codec.proto``. The host model only needs the config
message type to exist and derive from ``Envoy::Protobuf::Message``, so it writes a stub from
``pb_stub.h.in`` and ``pb_stub.validate.h.in``.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

_HERE = Path(__file__).resolve().parent
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def stub_paths(name: str) -> tuple[str, str]:
    """Include paths (relative to an include root) of the two generated headers."""
    base = f"src/application_protocols/{name}/{name}_codec"
    return f"{base}.pb.h", f"{base}.pb.validate.h"


def write_pb_stub(build_include_dir: Path, name: str, message: str) -> list[Path]:
    """Write the .pb.h and .pb.validate.h stubs for ``message`` under ``build_include_dir``.

    :param build_include_dir: an include root passed to the compiler with ``-I``.
    :param name: the codec directory name, e.g. ``awesomerpc``.
    :param message: the config message name, e.g. ``AwesomerpcCodec``.
    :returns: the written paths.
    :raises ValueError: if ``name`` or ``message`` is not a C++ identifier.
    """
    for label, value in (("name", name), ("message", message)):
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{label} {value!r} is not a C++ identifier")
    written = []
    for template, relative in zip(("pb_stub.h.in", "pb_stub.validate.h.in"), stub_paths(name)):
        text = Template((_HERE / template).read_text()).substitute(name=name, message=message)
        path = Path(build_include_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def config_message_name(proto_text: str) -> str:
    """The first top-level message declared in a codec's .proto file."""
    match = re.search(r"^\s*message\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{", proto_text, re.MULTILINE)
    if match is None:
        raise ValueError("no message declared in the codec's .proto file")
    return match.group(1)
