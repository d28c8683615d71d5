"""A bad conditional or Python space, through the real `hpo run`: exit 2, the message, and
nothing created (no database, no output folder)."""

from __future__ import annotations

from helpers.cli_runner import snapshot
from helpers.study_files import write_study


def test_a_bad_condition_exits_2_and_creates_nothing(tmp_path, run_hpo):
    write_study(
        tmp_path,
        {
            "storage": "sqlite:///runs/bad.db",
            "training": {"output_dir": "runs/bad"},
            "space": {
                "optim": {"type": "categorical", "choices": ["adamw_torch", "sgd"]},
                "adam_beta2": {
                    "type": "float",
                    "low": 0.95,
                    "high": 0.999,
                    "when": {"optim": "adamw"},
                },
                "warmup_steps": {"type": "int", "low": 0, "high": 4, "when": {"optimm": "sgd"}},
            },
        },
        name="bad.yaml",
    )
    before = snapshot(tmp_path)
    result = run_hpo("run", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: bad.yaml: 2 problem(s) in the study file")
    assert (
        "space.adam_beta2.when.optim: 'adamw' is a value optim never takes (choices "
        "['adamw_torch', 'sgd']), so the condition never holds" in result.stderr
    )
    assert "space.warmup_steps.when.optimm: unknown param 'optimm' (did you mean 'optim'?)" in (
        result.stderr
    )
    assert snapshot(tmp_path) == before


def test_a_python_space_that_fails_its_dry_run_exits_2_and_creates_nothing(tmp_path, run_hpo):
    (tmp_path / "my_space.py").write_text(
        "def hp_space(trial):\n"
        "    return {'learning_rate': trial.suggest_float('learning_rate', -1.0, -0.5)}\n"
    )
    write_study(
        tmp_path,
        {
            "storage": "sqlite:///runs/bad.db",
            "training": {"output_dir": "runs/bad"},
            "space": "my_space:hp_space",
        },
        name="bad.yaml",
    )
    before = snapshot(tmp_path)
    result = run_hpo("run", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: bad.yaml: 1 problem(s) in the study file")
    assert "space (my_space:hp_space): returned {'learning_rate': -0." in result.stderr
    assert "on a dry-run trial; TrainingArguments rejects it: learning_rate=" in result.stderr
    assert snapshot(tmp_path) == before
