"""`hpo` commands run in child processes of one preloaded interpreter, each under a memory limit.

Starting Python and importing torch and transformers costs seconds per command; the bad-input
corpus runs dozens. A runner process imports them once, then forks one child per command: the
child changes into the case's folder, limits its address space (RLIMIT_AS) to what it already
has plus `extra_memory_mb`, sends its output to files and runs `hpo.cli.main` exactly as the
`hpo` console script does. The runner kills a child that outlives `timeout_s`.

tests/conftest.py's session fixture `hpo_cli` is one such runner for every test. `snapshot`
lists a folder, to check that a refused command created nothing in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_RUNNER = r"""
import json, os, resource, signal, sys, time
import hpo.cli, hpo.study.validator, transformers, torch, optuna, sqlalchemy  # preloaded

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

def child(request):
    os.setsid()  # its own process group: a timeout kills whatever it started too
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    limit = vm_bytes() + request["extra_memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.argv = ["hpo", *request["argv"]]
    try:
        code = hpo.cli.main(request["argv"])
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        child(request)
    deadline = time.monotonic() + request["timeout_s"]
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            timed_out = True
        time.sleep(0.02)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"returncode": code, "timed_out": timed_out}), flush=True)
# Nothing to clean up: skip the interpreter's shutdown (the preloaded libraries' exit hooks
# and threads), which on a loaded machine could outlast close()'s wait.
os._exit(0)
"""


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CliRunner:
    """One preloaded runner process; `run(argv, cwd)` runs `hpo <argv>` in a fresh child."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._process = subprocess.Popen(
            [sys.executable, "-c", _RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(
        self,
        argv: list[str],
        cwd: Path,
        *,
        env: dict[str, str] | None = None,
        extra_memory_mb: int = 1024,
        timeout_s: float = 300,
    ) -> Result:
        environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        environment.pop("HPO_STORAGE", None)
        logs = cwd.parent / f"{cwd.name}.logs"
        logs.mkdir(exist_ok=True)
        request = {
            "argv": argv,
            "cwd": str(cwd),
            "env": environment,
            "extra_memory_mb": extra_memory_mb,
            "timeout_s": timeout_s,
            "stdout": str(logs / "stdout"),
            "stderr": str(logs / "stderr"),
        }
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        reply = json.loads(self._process.stdout.readline())
        return Result(
            returncode=reply["returncode"],
            stdout=(logs / "stdout").read_text(errors="replace"),
            stderr=(logs / "stderr").read_text(errors="replace"),
            timed_out=reply["timed_out"],
        )

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # it answered every request; its exit is not tested
            self._process.kill()
            self._process.wait()


def snapshot(directory: Path) -> list[str]:
    """Every path under `directory`, relative to it, but Python's own `__pycache__` (written
    when a study imports a module of the folder, not by hpo)."""
    return sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if "__pycache__" not in p.parts
    )
