"""The wheel is the product: `pip install codecgen-*.whl` in a clean virtualenv (dependencies from
the package index this machine's pip is configured for) gives a working generate, verify, fuzz,
image context and replay, run from outside the checkout with nothing of it on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from venvs import make_venv  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest), str(ROOT)],
                   check=True, cwd=dest)
    (built,) = dest.glob("codecgen-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv (made by the Python these tests run in) with the wheel and its declared
    dependencies, plus the image extra; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    py = make_venv(venv)
    subprocess.run([py, "-m", "pip", "install", "--quiet", f"{wheel}[image]"], check=True,
                   env=_clean_env(), cwd=venv)
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env


def _run(bin_dir: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = _clean_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(bin_dir / "codecgen"), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def test_the_wheel_carries_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("codecgen/targets.yaml", "codecgen/scaffold/spec.py.j2", "codecgen/backends/cpp/BUILD.j2",
                     "codecgen/backends/cpp/envoy.clang-format", "codecgen/image/Dockerfile.j2",
                     "codecgen/e2e/Dockerfile.j2"):
        assert required in names, required
    assert any(n.startswith("codecgen/backends/k8s/schemas/") and n.endswith(".json") for n in names)
    assert any(n.startswith("codecgen/hostmodel/include/") and n.endswith(".h") for n in names)
    assert any(n.startswith("codecgen/hostmodel/src/") and n.endswith(".cc") for n in names)
    # every data file of the package (templates, headers, schemas, pins; not its READMEs) is in the wheel
    data = {str(p.relative_to(ROOT)) for p in (ROOT / "codecgen").rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc", ".md") and "__pycache__" not in p.parts}
    assert data <= names, sorted(data - names)


@pytest.mark.slow
def test_the_installed_wheel_generates_verifies_fuzzes_and_writes_an_image_context(installed, tmp_path):
    spec = tmp_path / "awesomerpc.py"
    shutil.copyfile(ROOT / "protocols" / "awesomerpc.py", spec)
    where = subprocess.run([str(installed / "python"), "-c", "import codecgen; print(codecgen.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=_clean_env()).stdout
    assert where.startswith(str(installed.parent)), where  # the wheel's copy, not this checkout

    gen = _run(installed, tmp_path, "generate", str(spec), "-o", "out")
    assert gen.returncode == 0, gen.stderr
    assert (tmp_path / "out" / "src" / "application_protocols" / "awesomerpc" / "BUILD").is_file()
    assert "@envoy//bazel:envoy_build_system.bzl" in (tmp_path / "out/src/application_protocols/awesomerpc/BUILD").read_text()

    ver = _run(installed, tmp_path, "verify", str(spec), "--cases", "300")
    assert ver.returncode == 0, ver.stderr + ver.stdout
    assert "verify awesomerpc: OK" in ver.stdout

    fuzz = _run(installed, tmp_path, "fuzz", str(spec), "--time", "3", "--jobs", "1")
    assert fuzz.returncode == 0, fuzz.stderr + fuzz.stdout

    ctx = _run(installed, tmp_path, "image", "context", str(spec), "-o", "ctx")
    assert ctx.returncode == 0, ctx.stderr
    assert (tmp_path / "ctx" / "Dockerfile").is_file()
    assert list((tmp_path / "ctx").rglob("awesomerpc_codec.cc"))
