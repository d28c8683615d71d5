"""Running a command on a pseudo-terminal, as a user's shell would, and reading what it drew."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from typing import Any


def run_on_a_terminal(command: list[str], *, timeout: float = 600, **popen: Any) -> tuple[int, str]:
    """(exit code, everything written to the terminal) of `command` run with a pty as its
    stdout and stderr. Reads until the child closes the terminal or exits."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, **popen
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    code = process.wait(timeout=60)
    os.close(primary)
    return code, b"".join(chunks).decode(errors="replace")
