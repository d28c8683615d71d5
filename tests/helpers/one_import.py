"""Runs a real-world-style script through transformers.Trainer and through ours.

A script in tests/one_import/scripts/ imports `Trainer, TrainingArguments` from transformers on
one line marked `# the one import`; for ours that line (and nothing else) is swapped for
`from trainer import ...`. Each run is a fresh process, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "one_import" / "scripts"
REPO = Path(__file__).resolve().parents[2]
MARK = "# the one import"


def swapped_source(script: Path, implementation: str) -> str:
    """The script's text with its marked import line naming `implementation`."""
    lines = script.read_text(encoding="utf-8").splitlines(keepends=True)
    marked = [i for i, line in enumerate(lines) if MARK in line]
    assert len(marked) == 1, f"{script.name} must mark exactly one import line with {MARK!r}"
    if implementation == "ours":
        line = lines[marked[0]]
        lines[marked[0]] = line.replace("from transformers import", "from trainer import", 1)
    return "".join(lines)


def run_script(
    name: str,
    implementation: str,
    workdir: Path,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> str:
    """Runs scripts/<name> with `implementation` ('transformers' or 'ours') in workdir, with
    `env` added to the environment; returns its stdout and stderr (the run must succeed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{implementation}_{name}"
    path.write_text(swapped_source(SCRIPTS / name, implementation), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, str(path), str(workdir / f"out_{implementation}")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{implementation} {name} failed:\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def tagged_json(stdout: str, tag: str) -> dict:
    """The JSON a script printed on its line starting with `tag `."""
    lines = [line for line in stdout.splitlines() if line.startswith(tag + " ")]
    assert lines, f"no {tag} line in the output:\n{stdout[-2000:]}"
    return json.loads(lines[-1][len(tag) + 1 :])
