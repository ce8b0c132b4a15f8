"""Shared test paths and fixtures (one definition instead of one per test file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
# Every bundled protocol spec, in name order.
PROTOCOLS = sorted(p for p in (ROOT / "protocols").glob("*.py") if not p.name.startswith("_"))

if str(TESTS) not in sys.path:  # helper modules next to the tests (dockerd, dubbo_peer, ...)
    sys.path.insert(0, str(TESTS))


def protocol_path(name: str) -> Path:
    """The bundled spec ``protocols/<name>.py``."""
    return ROOT / "protocols" / f"{name}.py"


@pytest.fixture(scope="session")
def load_protocol():
    """``load_protocol(name)``: the IR of a bundled protocol, lowered once per session."""
    from codecgen.frontend import load

    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load(protocol_path(name))
        return cache[name]

    return get
