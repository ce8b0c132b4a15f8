"""How an extension's Python sources are embedded into a generated reference module.

The frontend checks a source's imports against ``EMBED_MARKER``; the Python backend embeds
``BASE_SOURCE`` first and every source's ``embeddable_text``.  No construct here, so the
backend can import it without loading construct.
"""

from __future__ import annotations

from pathlib import Path

# A line ending in this marker is an import the embedding replaces (the earlier source is inlined).
EMBED_MARKER = "# codecgen: embedded"
# The extension runtime every generated Python module with extensions embeds first.
BASE_SOURCE = str(Path(__file__).resolve().parent / "base.py")


def embeddable_text(path: str) -> str:
    """A source's text with its embedded-import lines removed."""
    return "\n".join(line for line in Path(path).read_text().splitlines()
                     if not line.rstrip().endswith(EMBED_MARKER)).strip("\n") + "\n"
