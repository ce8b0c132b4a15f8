"""Running the cluster tools (kind, kubectl, istioctl) as subprocesses, with one-line errors."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from codecgen.errors import UserError


class StepFailed(UserError):
    """A tool exited non-zero: the message names the command and its last output lines."""


@dataclass
class Tools:
    """Runs commands, echoing each one (``log``) before it runs."""

    log: Callable[[str], None] = print
    env: Optional[dict] = None
    ran: list = field(default_factory=list)

    def run(self, argv: Sequence[str], *, input: Optional[str] = None, timeout: float = 600,
            check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
        argv = [str(a) for a in argv]
        if shutil.which(argv[0]) is None:
            raise StepFailed(f"{argv[0]}: not installed (run `codecgen e2e preflight`)")
        if not quiet:
            self.log(f"$ {shlex.join(argv)}")
        self.ran.append(argv)
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                                  env=self.env)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{shlex.join(argv)}: no result within {timeout:g}s") from None
        if check and proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise StepFailed(f"{shlex.join(argv)}: exit {proc.returncode}: {' | '.join(tail) or 'no output'}")
        return proc

    def output(self, argv: Sequence[str], **kw) -> str:
        return self.run(argv, quiet=True, **kw).stdout
