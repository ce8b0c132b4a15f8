"""What ``codecgen e2e run`` needs before it starts, one line per missing thing.

Checked without changing anything: the cluster tools on PATH (kind, kubectl; istioctl of the
target's Istio, or GitHub reachable to fetch it), the Docker engine, the proxy image in it
(``kind load`` copies local images into the nodes), the registries and hosts the run pulls
from (docker.io: the kind node, Istio, the Python base; ghcr.io: Aeraki; github.com: the
Aeraki manifests), and a codecgen checkout to build the sample image's wheel from.
Reachability is a TCP connect (through ``HTTPS_PROXY`` when set), as ``codecgen image build``
checks its registries.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from codecgen.pins import REPO_ROOT, E2EPins, Target

HOSTS = (("docker.io", "the kind node image, Istio's images and the Python base image"),
         ("ghcr.io", "the Aeraki image"),
         ("github.com", "the Aeraki manifests and, when not on PATH, istioctl"))


def _version(argv: list[str]) -> Optional[str]:
    """The x.y.z version a tool prints (``argv`` asks for it), or None when it does not run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v?(\d+\.\d+\.\d+)", proc.stdout + proc.stderr)
    return match.group(1) if proc.returncode == 0 and match else None


def istioctl_version(exe: str) -> Optional[str]:
    return _version([exe, "version", "--remote=false", "--short"])


def preflight(target: Target, pins: E2EPins, proxy_image: str, base_url: Optional[str] = None,
              timeout: float = 3.0) -> tuple[list[str], list[str]]:
    """(problems, notes): problems stop the run; notes are worth knowing."""
    from codecgen.image import build as engine

    problems, notes = [], []
    for tool, why in (("kind", "creates the cluster"), ("kubectl", "applies the manifests and runs the checks")):
        if shutil.which(tool) is None:
            problems.append(f"{tool}: not on PATH ({why}); install it (kind {pins.kind_version} is pinned)"
                            if tool == "kind" else f"{tool}: not on PATH ({why})")
    kind = _version(["kind", "version"])
    if kind and kind != pins.kind_version.lstrip("v"):
        notes.append(f"kind {kind} found, {pins.kind_version} pinned (the node image "
                     f"{pins.kind_node_image.split('@')[0]} was released with it)")
    istioctl = istioctl_version("istioctl")
    if istioctl != target.istio_version:
        found = f"istioctl {istioctl} found" if istioctl else "no istioctl on PATH"
        notes.append(f"{found}; the run downloads istioctl {target.istio_version} ({pins.istioctl_url})")
    for host, why in HOSTS:
        reason = engine.registry_unreachable(host, timeout)
        if reason:
            problems.append(f"{host}: unreachable ({reason}); the run pulls {why} from it")
    url = engine.engine_url(base_url)
    try:
        client = engine.EngineClient(base_url=url, version="auto", timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to talk to the engine is the same problem
        problems.append(engine.engine_problem(url, exc))
    else:
        try:
            if not engine.image_present(client, proxy_image):
                problems.append(f"proxy image {proxy_image}: not in the docker engine at {url}; build it "
                                f"with `codecgen image build SPEC --tag {proxy_image}` (or docker pull it)")
        finally:
            client.close()
    if not (Path(REPO_ROOT) / "pyproject.toml").is_file():
        problems.append(f"no codecgen checkout at {REPO_ROOT}: the sample image installs codecgen from a "
                        f"wheel built from the checkout (pip install -e . from a clone)")
    return problems, notes
