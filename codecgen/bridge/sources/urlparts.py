"""Reading a source URL (``scheme://HOST:PORT[/path][?k=v...]``); errors name the URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

from codecgen.errors import UserError


@dataclass(frozen=True)
class SourceURL:
    url: str
    host: str
    port: int
    path: str
    query: Dict[str, List[str]]

    def one(self, key: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(key)
        return values[-1] if values else default

    def many(self, key: str) -> List[str]:
        return [v for value in self.query.get(key, []) for v in value.split(",") if v]

    def seconds(self, key: str, default: float) -> float:
        text = self.one(key)
        if text is None:
            return default
        number = text[:-1] if text.endswith("s") else text
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if value <= 0:
            raise UserError(f"--source {self.url}: {key}={text} is not a positive number of seconds")
        return value


def parse(url: str, default_port: int, known: Sequence[str] = ()) -> SourceURL:
    """Host, port, path and query of ``url``; unknown query keys are refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--source {url}: {exc}") from None
    if not parts.hostname:
        raise UserError(f"--source {url}: no host; expected {parts.scheme}://HOST:PORT")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(known))
    if unknown:
        allowed = ", ".join(known) or "none"
        raise UserError(f"--source {url}: unknown parameter {unknown[0]!r} (known: {allowed})")
    return SourceURL(url=url, host=parts.hostname, port=port or default_port,
                     path=parts.path, query=query)
