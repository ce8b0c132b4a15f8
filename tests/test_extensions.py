"""The extension mechanism (codecgen/ext/base.py): what the frontend refuses, what each backend
emits for an extension field, and the standalone Python module still needing only construct."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from construct import Bytes, Int8ub, Int32ub, Prefixed, Rebuild, Struct, len_, this

from codecgen import ERROR_MESSAGE, HeaderMap, Protocol
from codecgen.backends import cpp
from codecgen.backends import python as pyb
from codecgen.cli import main
from codecgen.errors import SpecError, UserError
from codecgen.frontend import load, lower

ROOT = Path(__file__).resolve().parent.parent
DUBBO = ROOT / "protocols" / "dubbo.py"

TOY = '''
from codecgen.ext.base import ExtensionField, ExtValue  # codecgen: embedded
{extra_import}

class {name}(ExtensionField):
    KIND = "toy_field"
    PYTHON_SOURCES = ("toy_ext.py",)
    CPP_SOURCES = ("toy.h", "toy.cc")
    PARAMS = ("kind",)
    OUTPUTS = {{"n": "int"}}

    @classmethod
    def decode(cls, data, params):
        return ExtValue(data, {{"n": len(data)}})
{extra}
'''


def _toy(tmp_path, name="ToyField", extra_import="", extra="", cpp=("toy.h", "toy.cc")):
    folder = tmp_path / f"ext_{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "toy_ext.py").write_text(TOY.format(name=name, extra_import=extra_import, extra=extra))
    for file in cpp:
        (folder / file).write_text("// toy\n")
    if cpp != ("toy.h", "toy.cc"):
        text = (folder / "toy_ext.py").read_text().replace('("toy.h", "toy.cc")', repr(tuple(cpp)))
        (folder / "toy_ext.py").write_text(text)
    spec = importlib.util.spec_from_file_location(f"toy_ext_{folder.name}", folder / "toy_ext.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: the frontend finds the class's file
    spec.loader.exec_module(module)
    return getattr(module, name)


def _frame(field):
    return Struct("kind" / Int8ub, "length" / Rebuild(Int32ub, len_(this.body)),
                  "body" / field(this.length, kind=this.kind))


def _refused(protocol, pattern):
    with pytest.raises(SpecError) as raised:
        lower(protocol)
    assert pytest.importorskip("re").search(pattern, str(raised.value)), str(raised.value)


def test_a_valid_toy_extension_lowers(tmp_path):
    proto = lower(Protocol(name="demo", frame=_frame(_toy(tmp_path)), message_type=[],
                           routing_keys={"n": "body.n"}))
    node = proto.field(("body",)).node
    assert node.kind == "toy_field" and [o.name for o in node.outputs] == ["n"]
    assert node.python_sources[0].endswith("toy_ext.py") and node.cpp_sources[1].endswith("toy.cc")
    assert dict(node.params)["kind"].path == ("kind",)


def test_unbounded_extension_is_refused(tmp_path):
    toy = _toy(tmp_path)
    _refused(Protocol(name="demo", frame=Struct("kind" / Int8ub, "body" / toy(kind=this.kind))),
             r"frame\.body: an extension field without a size must be the last field inside a Prefixed region")
    # ... and accepted as the rest of a Prefixed region.
    lower(Protocol(name="demo", frame=Struct("kind" / Int8ub, "body" / Prefixed(Int32ub, toy(kind=this.kind)))))


def test_class_must_be_named_after_its_kind(tmp_path):
    _refused(Protocol(name="demo", frame=_frame(_toy(tmp_path, name="Toy"))),
             r"frame\.body: extension Toy: the class must be named 'ToyField' after its KIND 'toy_field'")


def test_embedded_python_imports_only_stdlib_and_construct(tmp_path):
    _refused(Protocol(name="demo", frame=_frame(_toy(tmp_path, extra_import="import jinja2"))),
             r"toy_ext\.py:3: imports 'jinja2'; embedded sources may import only the standard library")


def test_outputs_are_for_roles_not_for_framing(tmp_path):
    toy = _toy(tmp_path)
    frame = Struct("kind" / Int8ub, "length" / Rebuild(Int32ub, len_(this.body)),
                   "body" / toy(this.length, kind=this.kind), "tail" / Bytes(this.body.n))
    _refused(Protocol(name="demo", frame=frame), r"frame\.tail: size refers to 'body\.n', which is not an earlier field")


def test_capabilities_are_checked(tmp_path):
    toy = _toy(tmp_path)
    _refused(Protocol(name="demo", frame=_frame(toy), headers=HeaderMap("body")),
             r"headers: extension 'toy_field' has no HEADER_MAP hooks")
    _refused(Protocol(name="demo", frame=_frame(toy), error_reply={"body": ERROR_MESSAGE}),
             r"error_reply\.body: extension 'toy_field' has no ERROR_MESSAGE hook")


def test_cpp_file_names_cannot_shadow_generated_files(tmp_path):
    _refused(Protocol(name="demo", frame=_frame(_toy(tmp_path, cpp=("config.h", "toy.cc")))),
             r"extension file 'config\.h' has the name of a generated file")


def test_embedded_names_cannot_collide_with_the_module(tmp_path):
    toy = _toy(tmp_path, extra="\n\ndef decode_all(data):\n    return None\n")
    proto = lower(Protocol(name="demo", frame=_frame(toy)))
    with pytest.raises(UserError, match="'decode_all' is defined by an embedded extension source"):
        pyb.render(proto)


def test_check_shows_the_extension(capsys):
    assert main(["check", str(DUBBO)]) == 0
    out = capsys.readouterr().out
    assert "extension dubbo_body[body_length](request=flag.req" in out
    assert "header map      body (extension entries)" in out
    assert "extension       body: dubbo_body (hessian2.py, dubbo_body.py, hessian2.h, hessian2.cc" in out


def test_cpp_backend_copies_and_lists_the_extension_sources():
    files = cpp.render(load(DUBBO))
    for name in ("hessian2.h", "hessian2.cc", "dubbo_body.h", "dubbo_body.cc"):
        assert name in files
        assert "CodecgenProtocol" not in files[name] and "codecgen_protocol" not in files[name]
        assert f'"{name}",' in files["BUILD"]
    assert "namespace Dubbo {" in files["hessian2.cc"]
    assert '#include "src/application_protocols/dubbo/hessian2.h"' in files["dubbo_body.h"]
    assert '#include "src/application_protocols/dubbo/dubbo_body.h"' in files["dubbo_codec.cc"]
    codec = files["dubbo_codec.cc"]
    assert "DubboBody::parse(buffer," in codec and "DubboBody::mutate(" in codec
    assert "DubboBody::errorValue(" in codec and "error.message, static_cast<int64_t>(error.type), metadata.getRequestId())" in codec


def test_standalone_python_module_needs_only_construct(tmp_path):
    module = tmp_path / "dubbo_codec.py"
    module.write_text(pyb.render(load(DUBBO)))
    assert not any(line.rstrip().endswith("# codecgen: embedded") for line in module.read_text().splitlines())
    corpus = ROOT / "tests" / "corpus" / "dubbo" / "conn0.c2s.bin"
    code = textwrap.dedent(f"""
        import importlib.util, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "codecgen":
                    raise ImportError("codecgen is not needed")

        sys.meta_path.insert(0, Block())
        spec = importlib.util.spec_from_file_location("dubbo_codec", {str(module)!r})
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        frames, held, error = m.decode_all(open({str(corpus)!r}, "rb").read())
        assert error is None and held == 0, error
        print(frames[0].as_json()["metadata"]["x-user"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alice"


def test_sample_tools_refuse_an_extension_without_a_sample_hook(tmp_path):
    """The reference module embeds its own ExtensionField: a class that does not define
    sample_value is recognised as having no hook, and the sample tools say so in one line."""
    from codecgen.backends import python as pyb
    from codecgen.errors import UserError
    from codecgen.sample import Sample

    proto = lower(Protocol(name="demo", frame=_frame(_toy(tmp_path)), routing_keys={"n": "body.n"}))
    sample = Sample(proto, pyb.load(proto), {}, {})
    with pytest.raises(UserError, match=r"^demo: extension field body \(toy_field\) has no sample_value hook: "
                                        r"the sample tools \(serve, call, probe\) cannot build its frames$"):
        sample.request({}, 1)
