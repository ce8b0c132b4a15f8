"""spec -> IR -> every backend's files, as one dict of relative path -> content."""

from __future__ import annotations

from typing import Optional

from codecgen import ir
from codecgen.backends import cpp, k8s, wireshark
from codecgen.backends import python as pyb


def generate_files(proto: ir.ProtocolIR, target: Optional[str] = None,
                   namespace: str = "default") -> dict[str, str]:
    files: dict[str, str] = {f"python/{proto.name}_codec.py": pyb.render(proto)}
    for name, text in k8s.render(proto, namespace=namespace).items():
        files[f"k8s/{name}"] = text
    for name, text in cpp.render(proto, target=target).items():
        files[f"src/application_protocols/{proto.name}/{name}"] = text
    files[f"wireshark/{wireshark.file_name(proto)}"] = wireshark.render(proto)
    return files
