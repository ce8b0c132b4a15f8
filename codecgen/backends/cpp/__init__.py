"""C++ backend: the six files of ``src/application_protocols/<name>/``.

``render(proto, target)`` returns ``{file name: text}``.  Target-dependent
Bazel labels come from ``codecgen.pins`` (codecgen/targets.yaml); the
generated C++ uses only the Metadata/Buffer subset stable across targets.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Optional

from codecgen import ir, naming
from codecgen.backends.cpp.emit import FrameModel, ParseEmitter, WriteEmitter
from codecgen.backends.cpp.format import clang_format
from codecgen.backends.cpp.roles import RoleEmitter
from codecgen.backends.templating import environment
from codecgen.pins import get_target
from codecgen.version import __version__


# Tokens of an extension's C++ sources rewritten on copy (codecgen/ext/base.py).
NAMESPACE_TOKEN = "CodecgenProtocol"
DIRECTORY_TOKEN = "codecgen_protocol"


def extension_files(proto: ir.ProtocolIR) -> dict[str, str]:
    """The C++ sources of every extension, in order, as copied into the codec directory."""
    out: dict[str, str] = {}
    for f in ir.extensions(proto.frame):
        for source in f.node.cpp_sources:
            name = FsPath(source).name
            if name not in out:
                text = FsPath(source).read_text()
                out[name] = text.replace(NAMESPACE_TOKEN, proto.camel).replace(DIRECTORY_TOKEN, proto.name)
    return out


def render(proto: ir.ProtocolIR, target: Optional[str] = None) -> dict[str, str]:
    pins = get_target(target)
    model = FrameModel(proto)
    roles = RoleEmitter(proto, model)
    r = proto.roles
    to_metadata = roles.to_metadata()
    ext_files = extension_files(proto)
    context = {
        "p": proto,
        "version": __version__,
        "spec_file": proto.spec_file or f"{proto.name}.py",
        "message": naming.proto_message(proto.name),
        "target": pins,
        "members": model.members,
        "entries": model.entries,
        "has_body": r.body is not None and isinstance(proto.field(r.body).node, ir.Bytes),
        "has_extensions": bool(model.extensions),
        "ext_headers": [n for n in ext_files if n.endswith(".h")],
        "ext_sources": [n for n in ext_files if n.endswith(".cc")],
        "mutation_prologue": roles.mutation_prologue() if roles.mutable else "",
        "mutation_epilogue": roles.mutation_epilogue() if roles.mutable else "",
        "body_field": ir.dotted(r.body) if r.body else "the spec names no body",
        "parse": ParseEmitter(proto, model).emit(),
        "write": WriteEmitter(proto, model).emit(),
        "to_metadata": to_metadata,
        "mutable": roles.mutable,
        "apply_mutation": roles.apply_mutation() if roles.mutable else "",
        "drop_keys": list(r.drop_keys),
        "drop_prefixes": list(r.drop_prefixes),
        "heartbeat": roles.reply(r.heartbeat_reply, depth=2) if r.heartbeat_reply is not None else "",
        "error_reply": roles.reply(r.error_reply),
        "error_uses_error": roles.uses_error(r.error_reply),
        "error_uses_metadata": roles.uses_metadata(r.error_reply),
        "encode_uses_buffer": roles.mutable or r.heartbeat_reply is not None,
        "enum_renderers": roles.enum_renderers,
        "reserved_keys": list(ir.RESERVED_KEYS),
        "reserved_prefix": ir.RESERVED_PREFIX,
        "codec_id_key": ir.CODEC_ID_KEY,
    }
    pieces = " ".join(str(context[k]) for k in ("parse", "write", "to_metadata", "apply_mutation",
                                                 "heartbeat", "error_reply", "mutation_epilogue"))
    context["helpers"] = used_helpers(pieces + (" asciiLower(" if roles.mutable else ""))
    env = environment(__name__)
    out = {
        "BUILD": env.get_template("BUILD.j2").render(**context),
        f"{proto.name}_codec.proto": env.get_template("codec.proto.j2").render(**context),
        "config.h": env.get_template("config.h.j2").render(**context),
        "config.cc": env.get_template("config.cc.j2").render(**context),
        f"{proto.name}_codec.h": env.get_template("codec.h.j2").render(**context),
        f"{proto.name}_codec.cc": env.get_template("codec.cc.j2").render(**context),
    }
    files = {name: _finish(name, text) for name, text in out.items()}
    files.update(ext_files)  # copied as written (only the two tokens replaced)
    return files


def _finish(name: str, text: str) -> str:
    text = text.rstrip("\n") + "\n"
    if name.endswith((".h", ".cc")):
        text = clang_format(text, name)
    return text


# Helper functions of codec.cc.j2 and the helpers each one calls: only those the generated
# statements reach are emitted (unused static functions fail -Werror).
HELPER_DEPS = {
    "need": (), "matchConstant": (), "readVarInt": ("need",), "writeVarInt": (), "writeZeros": (),
    "checkSigned64": (), "checkCount": (), "checkedAdd": (), "checkedSub": (), "checkedMul": (),
    "floorDiv": (), "floorMod": ("checkedSub", "checkedMul", "floorDiv"), "checkedShl": (),
    "checkedShr": (), "checkSize": (), "copyString": (), "asciiLower": (), "hexString": (),
    "parseDecimal": (), "publishHeader": ("asciiLower",), "zigzagDecode": (), "zigzagEncode": (),
}


def used_helpers(code: str) -> set[str]:
    used = {name for name in HELPER_DEPS if f"{name}(" in code}
    pending = list(used)
    while pending:
        for dep in HELPER_DEPS[pending.pop()]:
            if dep not in used:
                used.add(dep)
                pending.append(dep)
    return used
