"""hpo.report.status: `hpo status` / `hpo best` as text, and the commands' light imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from helpers.stored_studies import SECRET, build_study, with_password

from hpo.report.status import format_best, format_status
from hpo.storage import reader

REPO = Path(__file__).resolve().parents[3]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_password_never_appears_in_status_or_best(pg_url):
    url = with_password(pg_url)
    build_study(url)
    report = reader.status(url, "demo")
    texts = [
        json.dumps(report),
        format_status(report),
        json.dumps(reader.best(url, "demo")),
        format_best(reader.best(url, "demo")),
    ]
    assert report["storage"].count("***") == 1
    for text in texts:
        assert SECRET not in text


def test_format_status_names_the_metric_from_the_study_file(tmp_path):
    from types import SimpleNamespace

    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_study(url)
    report = reader.status(url, "demo")
    ref = SimpleNamespace(raw={"objective": {"metric": "eval_loss", "direction": "minimize"}})
    spec = SimpleNamespace(objective=SimpleNamespace(metrics=("eval_loss",)))
    for source in (ref, spec):
        assert f"eval_loss={report['best']['value']:.6g}" in format_status(report, source)
    assert "value=" in format_status(report)


def test_format_best_shows_number_value_params_and_checkpoint(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = build_study(url)
    text = format_best(reader.best(url, "demo"))
    best = study.best_trial
    assert f"trial {best.number}" in text
    assert f"{best.value:.6g}" in text
    for name, value in best.params.items():
        assert name in text and repr(value) in text
    assert best.user_attrs["best_checkpoint"] in text


INSPECT_ONLY = textwrap.dedent(
    """
    import json, sys
    from hpo.report.status import format_best, format_status
    from hpo.storage import reader
    report = reader.status(sys.argv[1], "demo")
    format_status(report)
    format_best(reader.best(sys.argv[1], "demo"))
    heavy = sorted(m for m in ("optuna", "torch", "transformers", "ray") if m in sys.modules)
    print(json.dumps({"heavy": heavy, "complete": report["counts"]["COMPLETE"]}))
    """
)


def test_inspection_imports_neither_optuna_nor_torch(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_study(url)
    out = subprocess.run(
        [sys.executable, "-c", INSPECT_ONLY, url],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == {"heavy": [], "complete": 4}


CLI_STATUS = textwrap.dedent(
    """
    import json, sys
    from hpo.cli import main
    code = main(sys.argv[1:])
    heavy = sorted(m for m in ("optuna", "torch", "transformers", "ray") if m in sys.modules)
    print(json.dumps({"code": code, "heavy": heavy}))
    """
)


@pytest.mark.parametrize("command", ["status", "best"])
def test_hpo_status_and_best_commands_stay_light(tmp_path, command):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    expected = build_study(url).best_trial
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"name: demo\nstorage: {url}\n")
    result = subprocess.run(
        [sys.executable, "-c", CLI_STATUS, command, str(study_file), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    *printed, summary = result.stdout.strip().splitlines()
    assert json.loads(summary) == {"code": 0, "heavy": []}
    report = json.loads("\n".join(printed))
    best = report["best"] if command == "status" else report
    assert (best["number"], best["params"]) == (expected.number, expected.params)
