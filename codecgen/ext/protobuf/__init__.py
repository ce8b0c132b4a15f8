"""The protobuf extension field type: a header that is one message of the user's ``.proto``.

``protobuf_header`` compiles the ``.proto`` (protoc from grpcio-tools), picks the fields the
spec uses and writes an extension class for them: ``<kind>.py`` (a ``ProtobufMessage`` with the
field table, ``wire.py``) and ``<kind>.h`` (the same table for ``protobuf_wire.{h,cc}`` and the
extension API's functions), in a content-addressed folder of codecgen's cache, from which the
class is imported. Both engines read the declared fields at the wire level; the C++ needs
neither libprotobuf nor protoc-generated code (see protocols/README.md, *Protobuf headers*)::

    TrpcHeader = protobuf_header(
        "trpc_header", HERE / "trpc.proto",
        request="trpc.RequestProtocol", response="trpc.ResponseProtocol",
        outputs={"request_id": "request_id", "func": "func", "ret": "ret"},
        header_map="trans_info",
        error={"request_id": REQUEST_ID, "ret": ErrorCode(default=31), "error_msg": ERROR_MESSAGE},
        max_size=0xFFFF)
    ...
    "header" / TrpcHeader(this.header_size, direction=DIRECTION),

``outputs``: output name -> dotted field path (through singular message fields), read in each
message that has it (int outputs from integer fields, text from string/bytes). ``header_map``:
a top-level ``map<string, string|bytes>`` (in each message). ``error``: dotted paths of the
response message -> ``REQUEST_ID``, ``ErrorCode(...)``, ``ERROR_MESSAGE`` or a literal. With a
``response`` message the class takes ``direction`` (``DIRECTION``) to pick the message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from codecgen import naming
from codecgen import spec as S
from codecgen.errors import UserError
from codecgen.ext.protobuf.descriptors import Messages, compile_proto
from codecgen.ext.protobuf.wire import INT_KINDS
from codecgen.hostmodel.build import default_cache_dir
from codecgen.ir import ErrorType

HERE = Path(__file__).resolve().parent
RUNTIME = ("wire.py", "protobuf_wire.h", "protobuf_wire.cc")
CPP_KINDS = {"int32": "Int32", "int64": "Int64", "uint32": "Uint32", "uint64": "Uint64",
             "sint32": "Sint32", "sint64": "Sint64", "bool": "Bool", "fixed32": "Fixed32",
             "sfixed32": "Sfixed32", "fixed64": "Fixed64", "sfixed64": "Sfixed64", "bytes": "Bytes",
             "message": "Message"}


def protobuf_header(kind: str, proto, request: str, response: str | None = None, *,
                    outputs: dict, header_map: str | None = None, error: dict | None = None,
                    max_size: int = 0xFFFFFFFF):
    """An ExtensionField class reading ``request`` (and ``response``) of ``proto``."""
    proto = Path(proto).resolve()
    messages = Messages(proto, compile_proto(proto))
    names = (request, response or request)
    for name in names:
        messages.message(name)  # refused here when absent, before fields are looked up in it
    trees, maps, output_kinds = [], [], {}
    for name in names:
        tree: dict = {}
        for output, dotted in outputs.items():
            try:
                chain = messages.resolve(name, dotted)
            except UserError:
                if response is None:
                    raise
                continue  # a field of the other direction's message
            leaf = messages.leaf_kind(name, dotted, chain)
            what = "int" if leaf in INT_KINDS else "text"
            if output_kinds.setdefault(output, what) != what:
                raise UserError(f"{proto}: output {output!r} is an integer in one message and text in the other")
            node = tree
            for f in chain[:-1]:
                node = node.setdefault(f.number, ("message", {}))[1]
            node[chain[-1].number] = (leaf, output)
        trees.append(tree)
        number = 0
        if header_map:
            chain = messages.resolve(name, header_map)
            if len(chain) != 1 or not messages.is_string_map(chain[0]):
                raise UserError(f"{proto}: {name}.{header_map} is not a top-level map<string, string|bytes>")
            number = chain[0].number
        maps.append(number)
    missing = [o for o in outputs if o not in output_kinds]
    if missing:
        raise UserError(f"{proto}: output {missing[0]!r}: field {outputs[missing[0]]!r} is in neither message")
    for tree in trees:
        for number, (leaf, _) in tree.items():
            if number in maps:
                raise UserError(f"{proto}: field {number} is both an output and the header map")
    rows = _error_rows(messages, names[1], error or {})
    ordered = {o: output_kinds[o] for o in outputs}
    camel = naming.camel(kind)
    py = _python_source(kind, camel, proto, names, ordered, trees, maps, rows, max_size, response is not None,
                        header_map is not None, bool(error))
    header = _cpp_source(camel, proto, names, ordered, trees, maps, rows, max_size, response is not None)
    return _load(kind, camel, {f"{kind}.py": py, f"{kind}.h": header})


def _error_rows(messages: Messages, name: str, error: dict) -> tuple:
    rows = []
    for dotted, value in error.items():
        chain = messages.resolve(name, dotted)
        leaf = messages.leaf_kind(name, dotted, chain)
        path = tuple(f.number for f in chain)
        where = f"{messages.proto}: error.{dotted}"
        if isinstance(value, S.RequestId):
            if leaf not in INT_KINDS:
                raise UserError(f"{where}: REQUEST_ID goes into an integer field")
            rows.append((path, leaf, "request_id", None))
        elif isinstance(value, S.ErrorCode):
            if leaf not in INT_KINDS:
                raise UserError(f"{where}: ErrorCode goes into an integer field")
            codes = {int(et): int(value.codes.get(et, value.default)) for et in ErrorType}
            rows.append((path, leaf, "error_code", {**codes, None: int(value.default)}))
        elif isinstance(value, S.ErrorMessage):
            if leaf in INT_KINDS:
                raise UserError(f"{where}: ERROR_MESSAGE goes into a string or bytes field")
            rows.append((path, leaf, "error_message", None))
        elif isinstance(value, int) and not isinstance(value, bool) and leaf in INT_KINDS:
            rows.append((path, leaf, "literal", value))
        elif isinstance(value, (str, bytes)) and leaf not in INT_KINDS:
            rows.append((path, leaf, "literal", value.encode() if isinstance(value, str) else value))
        else:
            raise UserError(f"{where}: {value!r} does not fit a {leaf} field")
    return tuple(sorted(rows, key=lambda r: r[0]))


def _python_source(kind, camel, proto, names, outputs, trees, maps, rows, max_size, directional,
                   header_map, error) -> str:
    lines = [
        f'"""{camel}: generated by codecgen from {proto.name} ({" / ".join(dict.fromkeys(names))});',
        'the field table of codecgen.ext.protobuf.wire.ProtobufMessage. Regenerated, not edited."""',
        "",
        "from codecgen.ext.protobuf.wire import ProtobufMessage  # codecgen: embedded",
        "",
        "",
        f"class {camel}(ProtobufMessage):",
        f"    KIND = {kind!r}",
        f"    PYTHON_SOURCES = ('wire.py', '{kind}.py')",
        f"    CPP_SOURCES = ('protobuf_wire.h', 'protobuf_wire.cc', '{kind}.h')",
        f"    PARAMS = {('direction',) if directional else ()!r}",
        f"    OUTPUTS = {outputs!r}",
        f"    HEADER_MAP = {header_map!r}",
        f"    ERROR_MESSAGE = {error!r}",
        f"    SCHEMAS = {tuple(trees)!r}",
        f"    MAP_FIELDS = {tuple(maps)!r}",
        f"    ERROR = {rows!r}",
        f"    MAX_SIZE = {max_size!r}",
    ]
    return "\n".join(lines) + "\n"


def _flatten(tree: dict, int_slots: dict, text_slots: dict) -> list:
    """The C++ node table: the message's own fields first, each nested message's after."""
    nodes: list = []

    def place(fields: dict) -> tuple[int, int]:
        first = len(nodes)
        items = sorted(fields.items())
        nodes.extend([None] * len(items))
        for i, (number, (kind, target)) in enumerate(items):
            if kind == "message":
                sub_first, count = place(target)
                nodes[first + i] = (number, kind, 0, sub_first, count)
            else:
                slot = (text_slots if kind == "bytes" else int_slots)[target]
                nodes[first + i] = (number, kind, slot, 0, 0)
        return first, len(items)

    place(tree)
    return nodes


def _cpp_source(camel, proto, names, outputs, trees, maps, rows, max_size, directional) -> str:
    int_slots = {o: i for i, o in enumerate(o for o, w in outputs.items() if w == "int")}
    text_slots = {o: i for i, o in enumerate(o for o, w in outputs.items() if w == "text")}
    o = ['#pragma once', '',
         f'// {camel}: generated by codecgen from {proto.name}',
         f'// ({" / ".join(dict.fromkeys(names))}): the field table of the protobuf extension',
         "// field type and the functions of codecgen's extension API (codecgen/ext/base.py) on",
         '// protobuf_wire.h. Regenerated, not edited.', '',
         '#include <cstdint>', '#include <string>', '#include <utility>', '#include <vector>', '',
         '#include "envoy/buffer/buffer.h"', '',
         '#include "src/application_protocols/codecgen_protocol/protobuf_wire.h"',
         '#include "src/meta_protocol_proxy/codec/codec.h"', '',
         'namespace Envoy {', 'namespace Extensions {', 'namespace NetworkFilters {',
         'namespace MetaProtocolProxy {', 'namespace CodecgenProtocol {', f'namespace {camel} {{', '']
    o += ["struct Params {", "  int64_t direction{0};", "};"] if directional else ["struct Params {};"]
    o += ['', 'struct Value {']
    for name, what in outputs.items():
        o.append(f"  int64_t {name}{{0}};" if what == "int" else f"  std::string {name};")
    o += ['  ProtobufWire::State state;', '};', '']
    for d, tree in enumerate(trees):
        nodes = _flatten(tree, int_slots, text_slots)
        o.append(f"inline constexpr ProtobufWire::Node kNodes{d}[] = {{")
        table = [(f"    {{{number}, ProtobufWire::Kind::{CPP_KINDS[kind]}, {slot}, {first}, {count}}},", number)
                 for number, kind, slot, first, count in nodes]
        width = max((len(row) for row, _ in table), default=0)
        o += [f"{row.ljust(width)} // field {number}" for row, number in table]  # one row per line
        if not nodes:
            o.append("    {0, ProtobufWire::Kind::Bytes, 0, 0, 0},  // none: a placeholder, never read")
        o.append("};")
        o.append(f"inline constexpr ProtobufWire::Schema kSchema{d}{{kNodes{d}, {len(tree)}, {maps[d]}, "
                 f"{len(int_slots)}, {len(text_slots)}}};")
    o += [f"inline constexpr uint64_t kMaxSize = {max_size};", '',
          'inline void parse(const Buffer::Instance& buffer, uint64_t offset, uint64_t length,',
          f'                  const Params& {"params" if directional else "/*params*/"}, Value& value) {{',
          f'  const ProtobufWire::Schema& schema = {"params.direction != 0 ? kSchema1 : kSchema0" if directional else "kSchema0"};',
          '  ProtobufWire::parse(buffer, offset, length, schema, kMaxSize, value.state);']
    for name, what in outputs.items():
        slot = int_slots[name] if what == "int" else text_slots[name]
        o.append(f"  value.{name} = value.state.{'ints' if what == 'int' else 'texts'}[{slot}];")
    o += ['}', '',
          'inline void entries(const Value& value, std::vector<std::pair<std::string, std::string>>& out) {',
          '  ProtobufWire::entries(value.state, out);', '}', '',
          'inline bool mutate(Value& value, const std::vector<std::pair<std::string, std::string>>& pairs) {',
          '  return ProtobufWire::mutate(value.state, pairs, kMaxSize);', '}', '',
          'inline uint64_t size(const Value& value) { return ProtobufWire::size(value.state); }', '',
          'inline void write(const Value& value, Buffer::Instance& field, Buffer::Instance& out) {',
          '  ProtobufWire::write(value.state, field, out);', '}', '']
    if rows:
        o += _cpp_error(rows)
    o += [f'}} // namespace {camel}', '} // namespace CodecgenProtocol', '} // namespace MetaProtocolProxy',
          '} // namespace NetworkFilters', '} // namespace Extensions', '} // namespace Envoy', '']
    return "\n".join(o)


def _cpp_error(rows) -> list:
    uses = {what for _, _, what, _ in rows}
    params = [f"{ctype} {name if what in uses else f'/*{name}*/'}" for ctype, name, what in (
        ("const std::string&", "message", "error_message"), ("int64_t", "error_type", "error_code"),
        ("uint64_t", "request_id", "request_id"))]
    o = ['// The error reply\'s message, fields in number order; zero and empty values left out.']
    line = "inline std::string errorValue("
    for i, param in enumerate(params):  # packed as clang-format does (100 columns)
        end = ") {" if i == len(params) - 1 else ","
        if line.endswith(",") and len(line) + 1 + len(param) + len(end) > 100:
            o.append(line)
            line = " " * len("inline std::string errorValue(") + param + end
        else:
            line += (" " if line.endswith(",") else "") + param + end
    o.append(line)
    for i, (path, kind, what, codes) in enumerate(rows):
        if what == "error_code":
            o.append(f"  int64_t code{i} = {codes[None]};")
            o.append("  switch (static_cast<MetaProtocolProxy::ErrorType>(error_type)) {")
            for et in ErrorType:
                if codes[int(et)] != codes[None]:
                    o += [f"  case MetaProtocolProxy::ErrorType::{et.name}:", f"    code{i} = {codes[int(et)]};",
                          "    break;"]
            o += ["  default:", "    break;", "  }"]

    def emit(prefix, target, depth):
        pad = "  " * depth
        numbers = sorted({path[len(prefix)] for path, *_ in rows if path[:len(prefix)] == prefix})
        for number in numbers:
            here = prefix + (number,)
            row = next(((i, r) for i, r in enumerate(rows) if r[0] == here), None)
            if row is None:
                name = "m" + "_".join(map(str, here))
                o.append(f"{pad}std::string {name};")
                emit(here, name, depth)
                o.append(f"{pad}ProtobufWire::putBytes({target}, {number}, {name});")
                continue
            i, (_, kind, what, literal) = row
            if what == "error_message":
                value = "message"
            elif what == "request_id":
                value = "static_cast<int64_t>(request_id)"
            elif what == "error_code":
                value = f"code{i}"
            elif kind == "bytes":
                value = "std::string(" + _cpp_bytes(literal) + f", {len(literal)})"
            else:
                value = f"int64_t{{{literal}}}" if literal >= -(1 << 63) else str(literal)
            if kind == "bytes":
                o.append(f"{pad}if (!{value}.empty()) {{")
                o.append(f"{pad}  ProtobufWire::putBytes({target}, {number}, {value});")
            else:
                o.append(f"{pad}if ({value} != 0) {{")
                o.append(f"{pad}  ProtobufWire::putInt({target}, {number}, ProtobufWire::Kind::{CPP_KINDS[kind]}, {value});")
            o.append(f"{pad}}}")

    o.append("  std::string out;")
    emit((), "out", 1)
    o += ["  return out;", "}", ""]
    return o


def _cpp_bytes(data: bytes) -> str:
    return '"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def _load(kind: str, camel: str, generated: dict):
    """Writes the runtime and the generated files into a folder named by their digest (once,
    atomically) and imports the class."""
    files = {name: (HERE / name).read_text() for name in RUNTIME}
    files.update(generated)
    digest = hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(files.items())).encode()).hexdigest()[:16]
    folder = default_cache_dir() / "protobuf" / f"{kind}-{digest}"
    if not all((folder / name).is_file() for name in files):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            tmp = folder / f".{name}.{os.getpid()}"
            tmp.write_text(text)
            os.replace(tmp, folder / name)
    module_name = f"codecgen_protobuf_{kind}_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, folder / f"{kind}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return getattr(module, camel)
