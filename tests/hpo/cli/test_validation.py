"""A bad study file, through the real command: exit 2, one screen, nothing created."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers.study_files import DELETE, write_study

REPO = Path(__file__).resolve().parents[3]


def run_hpo(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("HPO_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_bad_study_exits_2_without_traceback_and_creates_nothing(tmp_path):
    write_study(
        tmp_path,
        {
            "storage": "sqlite:///runs/bad.db",
            "training": {"output_dir": "runs/bad", "max_stepz": 10},
            "space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.01}},
            "sampler": {"name": "tpee"},
        },
        name="bad.yaml",
    )
    before = snapshot(tmp_path)
    result = run_hpo("run", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: bad.yaml: 3 problem(s) in the study file")
    assert (
        "training.max_stepz: not a TrainingArguments field (did you mean 'max_steps'?)"
        in result.stderr
    )
    assert "space.learning_rate: low 0.1 > high 0.01" in result.stderr
    assert "sampler.name: found 'tpee'" in result.stderr
    assert len(result.stderr.splitlines()) < 25  # one screen
    assert snapshot(tmp_path) == before  # no database, no runs/ directory, no study


def test_bad_yaml_and_missing_file_exit_2(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: x\nspace: [1, 2\n")
    result = run_hpo("run", "broken.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "line 3" in result.stderr and "YAML syntax error" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_hpo("worker", "absent.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "absent.yaml: no such file" in result.stderr


def test_password_never_printed(tmp_path):
    # `hpo status` validates name and storage only; the URL lacks its database name.
    write_study(tmp_path, {"storage": "postgresql://alice:hunter2@db.invalid"})
    result = run_hpo("status", "study.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "storage:" in result.stderr and "alice:***@db.invalid" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_inspection_loads_no_heavy_library(tmp_path):
    # `hpo status` / `hpo best` start with load_for_inspection: it must stay cheap.
    write_study(tmp_path, {"model": {"config": {"model_type": "unknown-even"}}, "data": DELETE})
    code = (
        "import json, sys\n"
        "from hpo.study import load_for_inspection\n"
        "ref = load_for_inspection('study.yaml')\n"
        "heavy = [m for m in ('torch', 'transformers', 'optuna', 'ray', 'numpy') if m in sys.modules]\n"
        # of the trainer, only its package and the vocabulary hpo.attrs re-exports
        "heavy += sorted(m for m in sys.modules if m.startswith('trainer.') and m != 'trainer.keys')\n"
        "print(json.dumps({'name': ref.name, 'storage': ref.storage, 'heavy': heavy}))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    environment.pop("HPO_STORAGE", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report == {
        "name": "unit",
        "storage": f"sqlite:///{tmp_path / 'runs' / 'unit.db'}",
        "heavy": [],
    }
    assert snapshot(tmp_path) == ["study.yaml"]


def test_a_one_key_typo_is_reported_before_torch_is_imported(tmp_path):
    # The shape pass runs before the checks that build the model: `-X importtime`
    # lists every module the process imported, and neither torch nor transformers is among them.
    write_study(tmp_path, {"budget": {"n_trail": 4}}, name="typo.yaml")
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    environment.pop("HPO_STORAGE", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hpo.cli", "run", "typo.yaml"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "budget.n_trail: unknown key" in result.stderr and "did you mean 'n_trials'" in (
        result.stderr
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "trainer.args" in imported  # the listing works: the training fields were read
    # (optuna judges the sampler's and pruner's options; it does not import torch)
    assert not imported & {"torch", "transformers", "ray"}
