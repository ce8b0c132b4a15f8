"""The C++ backend's output: layout, naming, targets, formatting, and engine parity on the CLI."""

from __future__ import annotations

import json
import random
import re

import pytest

from codecgen.backends import cpp
from codecgen.backends import python as pyb
from codecgen.backends.cpp.format import clang_format, formatter
from codecgen.cli import main
from codecgen.frontend import load
from codecgen.verify.values import random_frame
from conftest import PROTOCOLS, ROOT



@pytest.fixture(scope="module", params=PROTOCOLS, ids=lambda p: p.stem)
def rendered(request):
    proto = load(request.param)
    return proto, cpp.render(proto)


def test_six_files_in_meta_protocol_proxy_layout(rendered):
    proto, files = rendered
    name, camel = proto.name, proto.camel
    assert {"BUILD", f"{name}_codec.proto", "config.h", "config.cc", f"{name}_codec.h",
            f"{name}_codec.cc"} <= set(files)
    header = files[f"{name}_codec.h"]
    assert "namespace Envoy {\nnamespace Extensions {\nnamespace NetworkFilters {\n" \
           f"namespace MetaProtocolProxy {{\nnamespace {camel} {{" in header
    assert re.search(rf"class {camel}Codec : public MetaProtocolProxy::Codec,\s+"
                     r"Logger::Loggable<Logger::Id::misc> \{", header)
    config = files["config.h"]
    assert f"class {camel}CodecConfig" in config
    assert f"CodecFactoryBase<aeraki::meta_protocol::codec::{camel}Codec>" in config
    assert f'CodecFactoryBase("aeraki.meta_protocol.codec.{name}")' in config
    assert f"REGISTER_FACTORY({camel}CodecConfig, MetaProtocolProxy::NamedCodecConfigFactory);" in files["config.cc"]
    proto_text = files[f"{name}_codec.proto"]
    assert "package aeraki.meta_protocol.codec;" in proto_text and f"message {camel}Codec {{" in proto_text


def test_only_static_casts_and_comments_name_spec_fields(rendered):
    proto, files = rendered
    source = files[f"{proto.name}_codec.cc"]
    # No C-style casts of integer types, no reinterpret/const casts.
    assert not re.search(r"\((?:const )?(?:u?int(?:8|16|32|64)_t|char|size_t|unsigned|int|long)\s*\*?\)\s*[\w(]", source)
    assert "reinterpret_cast" not in source and "const_cast" not in source
    # Each top-level field of the spec is named in a comment of the parse function.
    parse = source[source.index("bool parseFrame("):source.index("struct BodySource")]
    for field in proto.frame.fields:
        if not field.name.startswith("_"):
            assert f"// {field.name}:" in parse, field.name


@pytest.mark.parametrize("target,annotations", [
    (None, "@com_github_cncf_udpa//udpa/annotations:pkg"),
    ("1.4.2", "@com_github_cncf_udpa//udpa/annotations:pkg"),
    ("head", "@com_github_cncf_xds//udpa/annotations:pkg"),
])
def test_build_file_follows_the_target_pins(target, annotations):
    build = cpp.render(load(ROOT / "protocols" / "awesomerpc.py"), target=target)["BUILD"]
    assert f'deps = ["{annotations}"]' in build
    assert '"//src/meta_protocol_proxy/codec:codec_interface"' in build
    assert 'name = "config"' in build and 'name = "codec_lib"' in build


def test_unknown_target_is_a_one_line_error(capsys, tmp_path):
    assert main(["generate", str(ROOT / "protocols" / "awesomerpc.py"), "-o", str(tmp_path / "o"),
                 "--target", "9.9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "9.9" in err and "1.4.2" in err
    assert not (tmp_path / "o").exists()


def test_clang_format_16_is_installed_and_output_is_formatted(rendered):
    assert formatter() is not None, "clang-format-16 is missing: run scripts/install.sh"
    proto, files = rendered
    for name in (f"{proto.name}_codec.cc", f"{proto.name}_codec.h", "config.h", "config.cc"):
        assert clang_format(files[name], name) == files[name], f"{name} is not in Envoy style"
        assert max(len(line) for line in files[name].splitlines()) <= 100


def test_generation_is_deterministic(rendered):
    proto, files = rendered
    assert cpp.render(load(ROOT / "protocols" / f"{proto.name}.py")) == files


@pytest.mark.parametrize("spec", PROTOCOLS, ids=lambda p: p.stem)
def test_decode_engines_print_the_same_json(spec, tmp_path, capsys):
    proto = load(spec)
    module = pyb.load(proto)
    rng = random.Random(7)
    data = b"".join(random_frame(proto, module, rng) for _ in range(5))
    stream = tmp_path / "stream.bin"
    stream.write_bytes(data + data[:3])
    outputs = []
    for engine in ("python", "cpp"):
        assert main(["decode", str(spec), str(stream), "--engine", engine]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    lines = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(lines) == 6 and lines[-1] == {"incomplete": 3}
