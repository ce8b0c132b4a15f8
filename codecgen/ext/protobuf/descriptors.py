"""The user's ``.proto``, compiled by protoc (grpcio-tools' bundled copy) into descriptors, and
the questions the protobuf extension asks of them: which field a dotted path names, of which
kind, and whether a field is a ``map<string, string|bytes>``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from codecgen.errors import UserError

# FieldDescriptorProto.Type -> the wire runtime's kind (codecgen/ext/protobuf/wire.py)
KINDS = {3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32", 8: "bool", 9: "bytes",
         11: "message", 12: "bytes", 13: "uint32", 14: "int32", 15: "sfixed32", 16: "sfixed64",
         17: "sint32", 18: "sint64"}
TYPE_NAMES = {1: "double", 2: "float", 10: "group"}
LABEL_REPEATED = 3
STRING, BYTES = 9, 12


def compile_proto(proto: Path) -> dict:
    """{full message name: DescriptorProto} of ``proto`` and its imports."""
    try:
        import grpc_tools
        from google.protobuf import descriptor_pb2
    except ImportError:
        raise UserError(f"{proto}: the protobuf extension compiles .proto files with grpcio-tools "
                        "(pip install 'codecgen[protobuf]')") from None
    if not proto.is_file():
        raise UserError(f"{proto}: no such .proto file")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="codecgen-proto-") as tmp:
        out = Path(tmp) / "set.pb"
        run = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto.parent}", f"-I{well_known}",
             "--include_imports", f"--descriptor_set_out={out}", proto.name],
            capture_output=True, text=True, cwd=proto.parent)
        if run.returncode != 0:
            first = ((run.stderr or run.stdout).strip().splitlines() or ["protoc failed"])[0]
            raise UserError(first if first.startswith((str(proto), proto.name)) else f"{proto}: {first}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    messages = {}

    def add(prefix, message):
        name = f"{prefix}.{message.name}" if prefix else message.name
        messages[name] = message
        for nested in message.nested_type:
            add(name, nested)

    for file in files.file:
        for message in file.message_type:
            add(file.package, message)
    return messages


class Messages:
    """Field lookups in the compiled messages; errors name the .proto and the path."""

    def __init__(self, proto: Path, messages: dict):
        self.proto, self.messages = proto, messages

    def message(self, name: str):
        found = self.messages.get(name.lstrip("."))
        if found is None:
            known = ", ".join(sorted(self.messages)) or "none"
            raise UserError(f"{self.proto}: no message {name!r} (messages: {known})")
        return found

    def resolve(self, message_name: str, dotted: str) -> list:
        """The fields along ``dotted`` (``request.service_name``), from ``message_name``."""
        message, chain = self.message(message_name), []
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            found = next((f for f in message.field if f.name == part), None)
            if found is None:
                raise UserError(f"{self.proto}: {message_name} has no field {'.'.join(parts[:i + 1])!r}")
            chain.append(found)
            if i < len(parts) - 1:
                if found.type != 11 or found.label == LABEL_REPEATED:
                    raise UserError(f"{self.proto}: {message_name}.{'.'.join(parts[:i + 1])} "
                                    "is not a (singular) message field")
                message = self.message(found.type_name)
        return chain

    def leaf_kind(self, message_name: str, dotted: str, chain) -> str:
        leaf = chain[-1]
        where = f"{self.proto}: {message_name}.{dotted}"
        if leaf.label == LABEL_REPEATED:
            raise UserError(f"{where} is repeated; only singular fields can be read")
        if leaf.type in TYPE_NAMES:
            raise UserError(f"{where} is a {TYPE_NAMES[leaf.type]}; integers, strings and bytes can be read")
        if leaf.type == 11:
            raise UserError(f"{where} is a message; name one of its fields")
        return KINDS[leaf.type]

    def is_string_map(self, field) -> bool:
        if field.type != 11 or field.label != LABEL_REPEATED:
            return False
        entry = self.message(field.type_name)
        if not entry.options.map_entry:
            return False
        types = {f.number: f.type for f in entry.field}
        return types.get(1) == STRING and types.get(2) in (STRING, BYTES)
