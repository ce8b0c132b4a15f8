"""Reproducers: every finding gets a folder with the bytes, a pcap and the command to replay it.

    <work>/<name>/findings/<engine>-<n>-<hash>/
        README.txt     what broke, and the exact commands that replay it
        stream.bin     the bytes of one direction of the connection (as the codec read them)
        stream.pcap    the same bytes as a TCP stream over 127.0.0.1 (opens in Wireshark)
        case.json      differential: the case, in `codecgen verify --replay` format
        input.bin      libFuzzer: the input (control bytes + stream), minimised when possible
        crash.bin      libFuzzer: the input as found, before minimisation
        report.txt     libFuzzer: the target's output on input.bin
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from codecgen.fuzz.inputs import parse_input
from codecgen.verify.run import case_to_json


@dataclass
class Finding:
    engine: str  # "libfuzzer" or "differential"
    summary: str
    folder: Path
    replay: list[str] = field(default_factory=list)  # shell commands
    files: dict = field(default_factory=dict)


def _folder(root: Path, engine: str, payload: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(payload).hexdigest()[:10]
    existing = sorted(root.glob(f"{engine}-*"))
    for folder in existing:
        if folder.name.endswith(digest):
            return folder
    return root / f"{engine}-{len(existing) + 1}-{digest}"


def _write_stream(folder: Path, data: bytes, chunks: list[int], direction: str, protocol: str,
                  files: dict) -> None:
    (folder / "stream.bin").write_bytes(data)
    files["stream"] = folder / "stream.bin"
    try:
        from codecgen.fuzz.pcap import write_pcap

        files["pcap"] = write_pcap(folder / "stream.pcap", data, chunks, direction, protocol)
    except ImportError:  # scapy missing: the raw bytes still reproduce
        (folder / "stream.pcap.missing").write_text("pip install scapy to get a pcap\n")


def describe_reads(chunks: list[int], size: int) -> str:
    """``[1, 1, 1, 5]`` of 20 bytes -> "3 x 1, 5, then the remaining 12 bytes"."""
    if not chunks:
        return "one read"
    parts, i = [], 0
    while i < len(chunks):
        j = i
        while j < len(chunks) and chunks[j] == chunks[i]:
            j += 1
        parts.append(f"{j - i} x {chunks[i]}" if j - i > 1 else str(chunks[i]))
        i = j
    rest = size - sum(chunks)
    return "reads of " + ", ".join(parts) + (f", then the remaining {rest} bytes" if rest > 0 else "")


def _readme(folder: Path, lines: list[str]) -> None:
    (folder / "README.txt").write_text("\n".join(lines).rstrip() + "\n")


def _command(parts: list[str]) -> str:
    return " ".join(shlex.quote(str(p)) for p in parts)


def write_differential(root: Path, spec: str, protocol: str, codec_dir: Optional[str],
                       case: dict, difference: str, report: str = "") -> Finding:
    payload = json.dumps(case_to_json(case), sort_keys=True).encode()
    folder = _folder(root, "differential", payload)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict = {}
    reproducer = {"spec": spec, "difference": difference, "case": case_to_json(case)}
    (folder / "case.json").write_text(json.dumps(reproducer, indent=2) + "\n")
    files["case"] = folder / "case.json"
    data = case.get("data") or b""
    _write_stream(folder, data, list(case.get("chunks") or []), case.get("direction", "request"),
                  protocol, files)
    if report:
        (folder / "report.txt").write_text(report)
        files["report"] = folder / "report.txt"
    codec = ["--codec-dir", codec_dir] if codec_dir else []
    replay = [_command(["codecgen", "fuzz", spec, *codec, "--replay", folder / "case.json"]),
              _command(["codecgen", "verify", spec, *codec, "--replay", folder / "case.json"])]
    extra = ""
    if case["kind"] == "mutation":
        extra = f"then encode on the {case['path']} path with mutation {json.dumps(case['mutation'])}"
    elif case["kind"] == "error":
        extra = (f"then onError (ErrorType {case['error_type']}, message {case['message'][:40]!r}) "
                 + ("with an empty metadata" if case.get("data") is None else "with its metadata"))
    elif case["kind"] == "heartbeat":
        extra = "then the heartbeat encode"
    _readme(folder, [
        f"codecgen fuzz: {protocol}: the reference codec and the C++ codec disagree",
        "",
        f"  {difference}",
        "",
        f"strategy: {case['kind']}; direction: {case.get('direction')}; "
        f"reads: {describe_reads(case.get('chunks') or [], len(data))}",
        f"input ({len(data)} bytes): {data.hex() if data else '(empty metadata)'}",
        extra,
        "",
        "replay:",
        *(f"  {c}" for c in replay),
        "",
        "stream.bin is the byte stream, stream.pcap the same as a TCP stream (Wireshark).",
    ])
    return Finding("differential", difference, folder, replay, files)


def write_libfuzzer(root: Path, spec: str, protocol: str, codec_dir: Optional[str], binary: Path,
                    crash: Path, minimized: Optional[Path], summary: str, report: str) -> Finding:
    raw = (minimized or crash).read_bytes()
    folder = _folder(root, "libfuzzer", raw)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict = {}
    shutil.copyfile(crash, folder / "crash.bin")
    (folder / "input.bin").write_bytes(raw)
    files["input"] = folder / "input.bin"
    files["crash"] = folder / "crash.bin"
    (folder / "report.txt").write_text(report)
    files["report"] = folder / "report.txt"
    plan, stream = parse_input(raw)
    if plan is not None:
        _write_stream(folder, stream, plan.chunks, plan.direction, protocol, files)
    codec = ["--codec-dir", codec_dir] if codec_dir else []
    replay = [_command(["codecgen", "fuzz", spec, *codec, "--replay", folder / "input.bin"]),
              _command([binary, folder / "input.bin"])]
    _readme(folder, [
        f"codecgen fuzz: {protocol}: libFuzzer stopped the codec on this input",
        "",
        f"  {summary}",
        "",
        f"input.bin ({len(raw)} bytes{', minimised from crash.bin' if minimized else ''}): "
        f"control byte 0x{raw[0]:02x}, param 0x{raw[1]:02x}, then the stream" if len(raw) >= 2 else
        f"input.bin ({len(raw)} bytes)",
        f"what the target did: {plan.describe()}" if plan is not None else "",
        f"stream ({len(stream)} bytes): {stream.hex()}" if plan is not None else "",
        "",
        "replay (the second command runs the libFuzzer binary itself; it is cached by content):",
        *(f"  {c}" for c in replay),
        "",
        "report.txt is the target's output on input.bin; stream.pcap the stream (Wireshark).",
    ])
    return Finding("libfuzzer", summary, folder, replay, files)
