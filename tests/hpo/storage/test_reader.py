"""hpo.storage.reader: status and best read straight from Optuna's tables, checked against optuna."""

from __future__ import annotations

import json
import math

import optuna
import pytest
from helpers.stored_studies import SECRET, build_study, set_schema_revision, with_password

from hpo.attrs import STATES
from hpo.errors import HpoError
from hpo.report.status import format_status
from hpo.storage import reader
from hpo.storage.optuna_compat import SCHEMA_HEAD_REVISION

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return with_password(request.getfixturevalue("pg_url"))


def test_status_matches_what_optuna_itself_reports(url):
    study = build_study(url)
    report = reader.status(url, "demo")

    assert report["study"] == "demo"
    assert report["directions"] == ["minimize"]
    expected = {state: 0 for state in STATES}
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
    report = reader.best(url, "demo")
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
    report = reader.best(url, "max")
    assert (report["number"], report["value"], report["params"]) == (1, 0.9, {"x": 0.9})


def test_infinite_values_rank_like_optuna(tmp_path):
    url = f"sqlite:///{tmp_path / 'inf.db'}"
    study = optuna.create_study(study_name="inf", storage=url)
    for value in (1.0, float("inf"), -float("inf"), -5.0):
        study.add_trial(optuna.create_trial(value=value))
    assert reader.best(url, "inf")["value"] == -math.inf == study.best_value


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
    front = reader.best(url, "multi")
    assert isinstance(front, list)
    assert [t["number"] for t in front] == sorted(t.number for t in study.best_trials)
    by_number = {t.number: t for t in study.best_trials}
    for trial in front:
        assert trial["values"] == by_number[trial["number"]].values
        assert trial["params"] == by_number[trial["number"]].params
    status = reader.status(url, "multi")
    assert status["directions"] == ["minimize", "maximize"]
    assert [t["number"] for t in status["best"]] == [t["number"] for t in front]
    assert "Pareto front" in format_status(status)


def test_pareto_front_keeps_ties_and_drops_dominated_points():
    values = {1: [1.0, 5.0], 2: [2.0, 2.0], 3: [2.0, 2.0], 4: [3.0, 3.0], 5: [0.5, 9.0]}
    assert sorted(reader.pareto_front(values, ["minimize", "minimize"])) == [1, 2, 3, 5]
    assert sorted(reader.pareto_front(values, ["maximize", "maximize"])) == [1, 4, 5]


def test_a_missing_study_names_the_studies_that_exist(url):
    build_study(url, "alpha")
    build_study(url, "beta")
    with pytest.raises(HpoError) as caught:
        reader.status(url, "gamma")
    message = str(caught.value)
    assert "'gamma'" in message and "'alpha'" in message and "'beta'" in message
    assert SECRET not in message


def test_a_study_without_complete_trials_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    study = optuna.create_study(study_name="fresh", storage=url)
    study.ask()
    with pytest.raises(HpoError, match="no complete trial yet.*1 running"):
        reader.best(url, "fresh")
    assert reader.status(url, "fresh")["best"] is None
    assert "none yet" in format_status(reader.status(url, "fresh"))


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path):
    path = tmp_path / "runs" / "nothing.db"
    with pytest.raises(HpoError, match="does not exist"):
        reader.status(f"sqlite:///{path}", "x")
    assert not path.exists() and not path.parent.exists()


def test_a_database_without_optuna_tables_says_so(tmp_path, pg_url):
    empty_file = tmp_path / "empty.db"
    empty_file.touch()
    for url in (f"sqlite:///{empty_file}", with_password(pg_url)):
        with pytest.raises(HpoError, match="holds no optuna study") as caught:
            reader.status(url, "x")
        assert SECRET not in str(caught.value)


def test_an_unreachable_database_error_hides_the_password():
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/none"
    with pytest.raises(HpoError) as caught:
        reader.best(url, "x")
    assert SECRET not in str(caught.value)
    assert "postgresql://postgres:***@127.0.0.1:1/none" in str(caught.value)


def test_a_storage_at_another_schema_revision_is_refused_with_what_to_do(url):
    build_study(url)
    set_schema_revision(url, "v9.9.9.z")
    with pytest.raises(HpoError) as caught:
        reader.status(url, "demo")
    message = str(caught.value)
    assert "'v9.9.9.z'" in message and repr(SCHEMA_HEAD_REVISION) in message
    assert "upgrade hpo" in message
    assert SECRET not in message


def test_status_returns_the_progress_a_running_trial_recorded(tmp_path):
    """The live view's step / max_steps / rate: the `progress` attr, per running trial."""
    from hpo.attrs import PROGRESS_ATTR

    url = f"sqlite:///{tmp_path}/progress.db"
    study = optuna.create_study(study_name="p", storage=url)
    trial = study.ask()
    trial.report(2.5, 8)
    trial.set_user_attr(PROGRESS_ATTR, {"step": 12, "max_steps": 24, "steps_per_s": 3.0})
    study.ask()  # running, nothing recorded yet
    running = reader.status(url, "p")["running"]
    assert [r["progress"] for r in running] == [
        {"step": 12, "max_steps": 24, "steps_per_s": 3.0},
        None,
    ]
    assert (running[0]["last_step"], running[0]["last_value"]) == (8, 2.5)
