"""Benchmarks run small and print what they promise; figures go unchecked.

bench/ scripts are run as a user runs them, as processes: gpu_check (no GPU here: its skip, and
its CPU smoke mode), ray_scale on a real `ray start --head`, status_at_scale on PostgreSQL,
startup on SQLite, hpo_vs_transformers in its smoke mode (all three contenders, end to end).
"""

from __future__ import annotations

import json
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


def test_the_peer_script_trains_and_evaluates_on_the_rows_hpo_run_does(tmp_path):
    """bench/hf_search.py never imports hpo, so it cuts the corpus itself: into the very
    blocks `hpo run` trains and evaluates on, or the comparison would not be like with like."""
    import numpy as np

    from bench._common import read_study, write_study
    from bench.hf_search import block_arrays
    from hpo.data import load_datasets
    from hpo.study import load

    doc = read_study("hpo_vs_transformers")
    spec = load(write_study(doc, tmp_path))
    hpo_train, hpo_eval = load_datasets(spec)
    train, held_out = block_arrays(doc["data"])
    assert train.shape == (len(hpo_train), doc["data"]["block_size"])
    np.testing.assert_array_equal(train, hpo_train.get_batch(range(len(hpo_train)))["input_ids"])
    np.testing.assert_array_equal(held_out, hpo_eval.get_batch(range(len(hpo_eval)))["input_ids"])


def test_time_to_quality_counts_from_when_hpo_first_comes_within_reach_of_a_peers_best():
    from bench.hpo_vs_transformers import SLACK, compare
    from bench.ttt_figure import best_so_far

    sides = {
        "a": {"wall_s": 200.0, "best": 2.50, "points": [(50.0, 2.7), (190.0, 2.50)]},
        "b": {"wall_s": 120.0, "best": 2.40, "points": [(100.0, 2.40)]},
        # hpo: within reach of (a)'s 2.50 + SLACK at 40 s, never of (b)'s 2.40 + SLACK
        "c": {
            "wall_s": 90.0,
            "best": 2.45,
            "points": [(20.0, 2.9), (40.0, 2.5 + SLACK), (80.0, 2.45)],
        },
    }
    result = compare(sides)
    assert result["a"]["reach_s"] == 40.0 and result["a"]["ratio"] == pytest.approx(5.0)
    assert result["a"]["gap"] == pytest.approx(-0.05)
    assert result["b"]["reach_s"] is None and result["b"]["ratio"] is None
    assert result["b"]["gap"] == pytest.approx(0.05)
    # the figure's line: each improvement, then held flat to the run's end
    assert best_so_far([[80.0, 2.45], [20.0, 2.9], [50.0, 3.1]], 90.0) == (
        [20.0, 80.0, 90.0],
        [2.9, 2.45, 2.45],
    )


@pytest.mark.slow
def test_hpo_vs_transformers_runs_all_three_contenders_in_its_smoke_mode(tmp_path):
    from hpo.report.html.chromium import find_chromium

    run = bench("hpo_vs_transformers.py", "--smoke", "--workdir", str(tmp_path))
    out = run.stdout
    assert "before: load average" in out and "after: load average" in out
    for contender in ("(a) hyperparameter_search(backend='optuna')", "(b) ", "(c) hpo run"):
        assert contender in out, out[-4000:] + run.stderr[-4000:]
    assert "time-to-quality ratio" in out and "target >= 3x" in out and "target <= +0.03" in out
    record = json.loads((tmp_path / "time_to_target.json").read_text())
    (seed,) = record["seeds"]
    assert record["smoke"] and record["task"]["n_trials"] == 4
    assert seed["order"] == ["a", "b", "c"] and set(seed["compare"]) == {"a", "b"}
    for side in seed["contenders"].values():
        # every contender's curve comes from its own records, inside its process's lifetime
        assert side["points"], side
        assert all(0 <= elapsed <= side["wall_s"] + 1 for elapsed, _ in side["points"])
        assert side["best"] == pytest.approx(min(value for _, value in side["points"]))
    png = tmp_path / "time-to-target.png"
    if find_chromium() is None:
        assert run.returncode == 1 and "no Chromium found" in run.stderr
        assert not png.exists()
    else:
        assert run.returncode == 0, run.stderr[-4000:]
        assert png.read_bytes().startswith(b"\x89PNG")
