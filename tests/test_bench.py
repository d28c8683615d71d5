"""Benchmarks of issues 9 and 13 run small and print what they promise; figures go unchecked.

bench/ scripts are run as a user runs them, as processes: gpu_check (no GPU here: its skip, and
its CPU smoke mode), ray_scale on a real `ray start --head`, status_at_scale on PostgreSQL,
startup on SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def bench(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_gpu_check_skips_cleanly_without_a_gpu():
    run = bench("gpu_check.py")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("skipped: no CUDA device")


@pytest.mark.slow
def test_gpu_check_runs_every_check_on_cpu_in_its_smoke_mode():
    run = bench("gpu_check.py", "--device", "cpu", "--tiny")
    out = run.stdout
    assert run.returncode == 0, (out + run.stderr)[-4000:]
    assert "ours: " in out and "transformers: " in out and "steps/s" in out
    assert "PASS  memory between trials" in out
    assert "PASS  bitwise resume: byte-identical" in out
    assert "auto_find_batch_size: skipped on CPU" in out


@pytest.mark.slow
def test_ray_scale_runs_small_on_a_ray_cluster(ray_head):
    run = bench(
        "ray_scale.py", "--trials", "3", "--address", ray_head["address"], env=ray_head["env"]
    )
    out = run.stdout
    assert run.returncode == 0, (out + run.stderr)[-4000:]
    assert "3/3 trials complete" in out
    assert "Ray Tune anchor (10000 x 1 s, 16 CPUs) | 715" in out
    assert "load average before:" in out and "after:" in out
    assert "overhead over the ideal" in out


@pytest.mark.slow
def test_status_at_scale_runs_on_postgresql():
    run = bench("status_at_scale.py", "--postgres", "--trials", "50", "--repeat", "1", "--hpo-only")
    out = run.stdout
    assert run.returncode == 0, (out + run.stderr)[-4000:]
    assert "50 trials x 20 steps, postgresql" in out
    assert "target: hpo status" in out and "target: hpo best" in out
    assert "before: load average" in out and "after: load average" in out


def test_startup_times_the_first_trial_against_the_imports():
    run = bench("startup.py", "--rounds", "1")
    out = run.stdout
    assert run.returncode == 0, (out + run.stderr)[-4000:]
    assert "hpo run -> first trial starts" in out and "imports (python -c ...)" in out
    assert "target: first trial within 1 s of the imports ->" in out
    assert "before: load average" in out and "after: load average" in out
