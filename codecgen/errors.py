"""Errors that end a command with a one-line message and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a spec, a file or a flag.  The message names the culprit."""


class SpecError(UserError):
    """A spec the frontend refuses; the message is ``<proto>: <field path>: <reason>``."""

    def __init__(self, protocol: str, path: str, reason: str):
        self.protocol = protocol
        self.path = path
        self.reason = reason
        where = f"{path}: " if path else ""
        super().__init__(f"{protocol}: {where}{reason}")
