"""hpo.report.status: status and best read straight from Optuna's tables, checked against optuna."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from hpo.errors import HpoError
from hpo.report import status as inspect

REPO = Path(__file__).resolve().parents[3]
SECRET = "inspect-Pa55word"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def with_password(url: str, password: str = SECRET) -> str:
    """The same URL with a password (PostgreSQL here trusts any password)."""
    return sqlalchemy.engine.make_url(url).set(password=password).render_as_string(False)


def build_study(url: str, name: str = "demo") -> optuna.Study:
    """Four finished trials of each kind plus one still running, with steps and checkpoints."""
    sampler = optuna.samplers.RandomSampler(seed=0)  # cheap: the sampler is not under test
    study = optuna.create_study(study_name=name, storage=url, sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        batch = trial.suggest_categorical("per_device_train_batch_size", [8, 16, 32])
        layers = trial.suggest_int("model.n_layer", 1, 4)
        trial.set_user_attr("best_checkpoint", f"runs/{name}/trial-{trial.number}/checkpoint-30")
        for step in (10, 20, 30):
            trial.report(lr * 100 / step, step)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise RuntimeError("out of memory")
        return lr * 100 + batch / 1000 + layers / 100

    study.optimize(objective, n_trials=6, catch=(RuntimeError,))
    running = study.ask()
    running.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    running.report(0.9, 10)
    running.report(0.7, 20)
    study.ask()  # a second running trial that has reported nothing yet
    return study


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return with_password(request.getfixturevalue("pg_url"))


def test_status_matches_what_optuna_itself_reports(url):
    study = build_study(url)
    report = inspect.status(url, "demo")

    assert report["study"] == "demo"
    assert report["directions"] == ["minimize"]
    expected = {state: 0 for state in inspect.STATES}
    for trial in study.trials:
        expected[trial.state.name] += 1
    assert (
        report["counts"]
        == expected
        == {
            "COMPLETE": 4,
            "PRUNED": 1,
            "FAIL": 1,
            "RUNNING": 2,
            "WAITING": 0,
        }
    )

    best = study.best_trial
    assert report["best"]["number"] == best.number
    assert report["best"]["value"] == pytest.approx(best.value)
    assert report["best"]["params"] == best.params
    assert report["best"]["checkpoint"] == best.user_attrs["best_checkpoint"]

    running = {t["number"]: t for t in report["running"]}
    assert sorted(running) == [6, 7]
    assert (running[6]["last_step"], running[6]["last_value"]) == (20, 0.7)
    assert (running[7]["last_step"], running[7]["last_value"]) == (None, None)
    assert running[6]["started"] is not None


def test_best_decodes_categorical_int_and_log_params_like_optuna(url):
    study = build_study(url)
    report = inspect.best(url, "demo")
    best = study.best_trial
    assert set(report) >= {"number", "value", "params", "checkpoint"}
    assert report["number"] == best.number
    assert report["params"] == best.params
    assert type(report["params"]["per_device_train_batch_size"]) is int
    assert type(report["params"]["model.n_layer"]) is int
    assert report["checkpoint"] == f"runs/demo/trial-{best.number}/checkpoint-30"
    json.dumps(report)  # the --json output


def test_maximize_picks_the_largest_value(tmp_path):
    url = f"sqlite:///{tmp_path / 'max.db'}"
    study = optuna.create_study(study_name="max", storage=url, direction="maximize")
    for x in (0.3, 0.9, 0.1):
        study.enqueue_trial({"x": x})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    report = inspect.best(url, "max")
    assert (report["number"], report["value"], report["params"]) == (1, 0.9, {"x": 0.9})


def test_infinite_values_rank_like_optuna(tmp_path):
    url = f"sqlite:///{tmp_path / 'inf.db'}"
    study = optuna.create_study(study_name="inf", storage=url)
    for value in (1.0, float("inf"), -float("inf"), -5.0):
        study.add_trial(optuna.create_trial(value=value))
    assert inspect.best(url, "inf")["value"] == -math.inf == study.best_value


def test_multi_objective_best_is_optunas_pareto_front(url):
    study = optuna.create_study(
        study_name="multi",
        storage=url,
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.RandomSampler(seed=1),
    )
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), t.suggest_categorical("y", [0.1, 0.5, 0.9])),
        n_trials=25,
    )
    front = inspect.best(url, "multi")
    assert isinstance(front, list)
    assert [t["number"] for t in front] == sorted(t.number for t in study.best_trials)
    by_number = {t.number: t for t in study.best_trials}
    for trial in front:
        assert trial["values"] == by_number[trial["number"]].values
        assert trial["params"] == by_number[trial["number"]].params
    status = inspect.status(url, "multi")
    assert status["directions"] == ["minimize", "maximize"]
    assert [t["number"] for t in status["best"]] == [t["number"] for t in front]
    assert "Pareto front" in inspect.format_status(status)


def test_pareto_front_keeps_ties_and_drops_dominated_points():
    values = {1: [1.0, 5.0], 2: [2.0, 2.0], 3: [2.0, 2.0], 4: [3.0, 3.0], 5: [0.5, 9.0]}
    assert sorted(inspect.pareto_front(values, ["minimize", "minimize"])) == [1, 2, 3, 5]
    assert sorted(inspect.pareto_front(values, ["maximize", "maximize"])) == [1, 4, 5]


def test_decode_param_reads_both_distribution_json_forms():
    categorical = json.dumps(
        {"name": "CategoricalDistribution", "attributes": {"choices": ["adamw", None, 3]}}
    )
    assert inspect.decode_param(1.0, categorical) is None
    assert inspect.decode_param(2.0, categorical) == 3
    assert inspect.decode_param(0.0, '{"type": "categorical", "choices": ["a", "b"]}') == "a"
    assert inspect.decode_param(3.0, '{"type": "int", "low": 1, "high": 4}') == 3
    log_int = {"name": "IntDistribution", "attributes": {"low": 1, "high": 64, "log": True}}
    assert inspect.decode_param(16.0, json.dumps(log_int)) == 16


def test_a_missing_study_names_the_studies_that_exist(url):
    build_study(url, "alpha")
    build_study(url, "beta")
    with pytest.raises(HpoError) as caught:
        inspect.status(url, "gamma")
    message = str(caught.value)
    assert "'gamma'" in message and "'alpha'" in message and "'beta'" in message
    assert SECRET not in message


def test_a_study_without_complete_trials_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(study_name="fresh", storage=url)
    study.ask()
    with pytest.raises(HpoError, match="no complete trial yet.*1 running"):
        inspect.best(url, "fresh")
    assert inspect.status(url, "fresh")["best"] is None
    assert "none yet" in inspect.format_status(inspect.status(url, "fresh"))


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path):
    path = tmp_path / "runs" / "nothing.db"
    with pytest.raises(HpoError, match="does not exist"):
        inspect.status(f"sqlite:///{path}", "x")
    assert not path.exists() and not path.parent.exists()


def test_a_database_without_optuna_tables_says_so(tmp_path, pg_url):
    empty_file = tmp_path / "empty.db"
    empty_file.touch()
    for url in (f"sqlite:///{empty_file}", with_password(pg_url)):
        with pytest.raises(HpoError, match="holds no optuna study") as caught:
            inspect.status(url, "x")
        assert SECRET not in str(caught.value)


def test_an_unreachable_database_error_hides_the_password():
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/none"
    with pytest.raises(HpoError) as caught:
        inspect.best(url, "x")
    assert SECRET not in str(caught.value)
    assert "postgresql://postgres:***@127.0.0.1:1/none" in str(caught.value)


def test_the_password_never_appears_in_status_or_best(pg_url):
    url = with_password(pg_url)
    build_study(url)
    report = inspect.status(url, "demo")
    texts = [
        json.dumps(report),
        inspect.format_status(report),
        json.dumps(inspect.best(url, "demo")),
        inspect.format_best(inspect.best(url, "demo")),
    ]
    assert report["storage"].count("***") == 1
    for text in texts:
        assert SECRET not in text


def test_format_status_names_the_metric_from_the_study_file(tmp_path):
    from types import SimpleNamespace

    url = f"sqlite:///{tmp_path / 'study.db'}"
    build_study(url)
    report = inspect.status(url, "demo")
    ref = SimpleNamespace(raw={"objective": {"metric": "eval_loss", "direction": "minimize"}})
    spec = SimpleNamespace(objective=SimpleNamespace(metrics=("eval_loss",)))
    for source in (ref, spec):
        assert f"eval_loss={report['best']['value']:.6g}" in inspect.format_status(report, source)
    assert "value=" in inspect.format_status(report)


def test_format_best_shows_number_value_params_and_checkpoint(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = build_study(url)
    text = inspect.format_best(inspect.best(url, "demo"))
    best = study.best_trial
    assert f"trial {best.number}" in text
    assert f"{best.value:.6g}" in text
    for name, value in best.params.items():
        assert name in text and repr(value) in text
    assert best.user_attrs["best_checkpoint"] in text


INSPECT_ONLY = textwrap.dedent(
    """
    import json, sys
    from hpo.report import status as inspect
    report = inspect.status(sys.argv[1], "demo")
    inspect.format_status(report)
    inspect.format_best(inspect.best(sys.argv[1], "demo"))
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
