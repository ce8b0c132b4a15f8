"""The sample app image of the e2e suite: its build context and its build.

The context is ``Dockerfile`` (``Dockerfile.j2``), ``wheels/`` (codecgen, built from this
checkout with ``pip wheel``, so the image runs exactly this code, and ``requirements.txt``
installing it with the ``bridge`` extra) and ``specs/`` (the specs
the pods serve and probe). It is written atomically and built through the docker SDK like
the proxy image (``codecgen.image.build``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Optional, Sequence

from codecgen.e2e import sample_dockerfile
from codecgen.errors import UserError
from codecgen.output import write_tree
from codecgen.pins import REPO_ROOT, E2EPins


def build_wheel(dest: Path) -> Path:
    """codecgen's wheel from the checkout (no dependencies: pip fetches those in the image)."""
    if not (REPO_ROOT / "pyproject.toml").is_file():
        raise UserError(f"no codecgen checkout at {REPO_ROOT} to build the sample image's wheel from")
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--quiet", "-w", str(dest), str(REPO_ROOT)], capture_output=True, text=True)
    wheels = sorted(dest.glob("codecgen-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-2:]
        raise UserError(f"pip wheel {REPO_ROOT}: exit {proc.returncode}: {' | '.join(tail) or 'no wheel'}")
    return wheels[0]


def write_context(out: Path, pins: E2EPins, specs: Sequence[str]) -> list[Path]:
    files: dict[str, bytes | str] = {"Dockerfile": sample_dockerfile(pins), ".dockerignore": "**/__pycache__\n"}
    for spec in specs:
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"{spec}: no such spec file")
        files[f"specs/{path.name}"] = path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        files[f"wheels/{wheel.name}"] = wheel.read_bytes()
        files["wheels/requirements.txt"] = f"/tmp/wheels/{wheel.name}[bridge]\n"  # the Dockerfile's COPY target
    return write_tree(out, files)


def build(context: Path, tag: str, base_url: Optional[str] = None, progress: Optional[IO[str]] = None,
          network_mode: Optional[str] = None):
    from codecgen.image import build as engine

    result = engine.build(context, tag=tag, base_url=base_url, progress=progress, network_mode=network_mode,
                          log_path=context.parent / "sample-build.log")
    if not result.ok:
        raise UserError(f"sample image {tag}: {result.summary()}")
    return result


def check_present(tag: str, base_url: Optional[str] = None) -> None:
    from codecgen.image import build as engine

    client = engine.connect(base_url)
    try:
        if not engine.image_present(client, tag):
            raise UserError(f"--sample-image {tag}: not in the docker engine (drop --no-sample-build to build it)")
    finally:
        client.close()
