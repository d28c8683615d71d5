"""Starting from what is known, on real storages: `enqueue:` entries run first and once over
every run; `warm_start:` copies an earlier study's fitting COMPLETE trials into the study (in
no budget, never the best, marked, done once); a rerun's study file is compared with what the
study was started with (objective or task: refused, exit 2, nothing written; space: printed
and recorded). The Optuna backend here; the Ray backend in tests/hpo/backends/ray/.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.study_files import tiny_spec, write_study_file
from optuna.trial import TrialState

from hpo.attrs import (
    ENQUEUED_ATTR,
    SPACE_CHANGES_ATTR,
    STUDY_FILE_ATTR,
    WARM_START_ATTR,
)
from hpo.backends import EXIT_OK
from hpo.backends.optuna.supervisor import run_study
from hpo.cli import main
from hpo.spec import BudgetSpec, ObjectiveSpec, ParamSpec, WarmStartSpec
from hpo.storage import reader

ENQUEUED = [{"learning_rate": 0.003, "model.n_layer": 1}, {"learning_rate": 0.0002}]


def old_study(url: str, name: str = "old") -> list[dict]:
    """An earlier study, filled without training: 4 COMPLETE trials (one outside the tiny
    space), one PRUNED. Returns the params of the COMPLETE ones that fit."""
    study = optuna.create_study(study_name=name, storage=url)
    lr = optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)
    layers = optuna.distributions.IntDistribution(1, 4)
    rows = [(3e-4, 1, 2.5), (1e-3, 2, 2.0), (0.5, 1, 9.0), (5e-3, 2, 1.5)]
    for lr_value, n_layer, value in rows:
        study.add_trial(
            optuna.trial.create_trial(
                params={"learning_rate": lr_value, "model.n_layer": n_layer},
                distributions={"learning_rate": lr, "model.n_layer": layers},
                value=value,
            )
        )
    study.add_trial(
        optuna.trial.create_trial(
            params={"learning_rate": 1e-3, "model.n_layer": 1},
            distributions={"learning_rate": lr, "model.n_layer": layers},
            state=TrialState.PRUNED,
        )
    )
    return [{"learning_rate": lr, "model.n_layer": n} for lr, n, _ in rows if lr <= 1e-2]


def with_starts(spec, url: str, **changes):
    return dataclasses.replace(
        spec,
        budget=BudgetSpec(n_trials=3),
        enqueue=tuple(ENQUEUED),
        warm_start=WarmStartSpec(study="old", storage=url),
        **changes,
    )


def trials_of(spec) -> list:
    return optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()


def check_warm_started_study(spec, taken: list[dict], out: str) -> None:
    trials = trials_of(spec)
    copies = [t for t in trials if WARM_START_ATTR in t.user_attrs]
    trained = [t for t in trials if WARM_START_ATTR not in t.user_attrs]
    # The fitting COMPLETE trials were copied, marked with their origin, with their values.
    assert [c.params for c in copies] == taken
    assert [c.user_attrs[WARM_START_ATTR] for c in copies] == [
        {"study": "old", "trial": n} for n in (0, 1, 3)
    ]
    assert [c.value for c in copies] == [2.5, 2.0, 1.5]
    assert "3 of 5 trials taken from study 'old': 1 had params outside this space " in out
    assert "(learning_rate=0.5 > high=0.01)" in out
    assert "1 had not completed (1 pruned)" in out
    # The copies count against no budget: n_trials=3 trained trials finished.
    assert [t.state for t in trained] == [TrialState.COMPLETE] * 3
    # The enqueue entries ran first, in order; the second named one param, the sampler drew
    # the other.
    assert trained[0].params == ENQUEUED[0]
    assert trained[1].params["learning_rate"] == ENQUEUED[1]["learning_rate"]
    assert [t.user_attrs.get(ENQUEUED_ATTR) for t in trained] == [0, 1, None]
    # status counts the copies apart, and the best trial is one trained here.
    status = reader.status(spec.storage, spec.name)
    assert status["counts"]["COMPLETE"] == 3 and status["warm_start"] == 3
    best = reader.best(spec.storage, spec.name)
    assert best["number"] in {t.number for t in trained}
    assert Path(best["checkpoint"]).is_dir()  # retention kept the trained best's checkpoint


@pytest.mark.slow
def test_enqueue_and_warm_start_on_sqlite_then_a_rerun_adds_neither_again(tmp_path, capsys):
    old_url = f"sqlite:///{tmp_path}/old.db"
    taken = old_study(old_url)
    spec = with_starts(tiny_spec(tmp_path), old_url)
    assert run_study(spec) == EXIT_OK
    check_warm_started_study(spec, taken, capsys.readouterr().out)
    count = len(trials_of(spec))

    # A rerun with a larger budget: no copy and no entry again; two more trained trials.
    assert run_study(dataclasses.replace(spec, budget=BudgetSpec(n_trials=5))) == EXIT_OK
    out = capsys.readouterr().out
    assert "done by an earlier run (3 trials)" in out
    assert "all 2 configuration(s) were queued by an earlier run" in out
    trials = trials_of(spec)
    assert len(trials) == count + 2
    assert sum(WARM_START_ATTR in t.user_attrs for t in trials) == 3
    assert sum(ENQUEUED_ATTR in t.user_attrs for t in trials) == 2


@pytest.mark.slow
def test_enqueue_and_warm_start_on_postgresql(tmp_path, pg_url, capsys):
    taken = old_study(pg_url)
    spec = with_starts(tiny_spec(tmp_path), pg_url, storage=pg_url)
    assert run_study(spec) == EXIT_OK
    check_warm_started_study(spec, taken, capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------
# A warm start that cannot happen: exit 2, nothing created


def run_cli(path: Path, capsys) -> tuple[int, str]:
    code = main(["run", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_warm_start_from_a_missing_file_creates_nothing(tmp_path, capsys):
    path = write_study_file(
        tmp_path, warm_start={"study": "old", "storage": f"sqlite:///{tmp_path}/nowhere.db"}
    )
    code, out = run_cli(path, capsys)
    assert code == 2
    assert f"warm_start: no storage at sqlite:///{tmp_path}/nowhere.db" in out
    assert "does not exist" in out
    assert not (tmp_path / "nowhere.db").exists() and not (tmp_path / "tiny.db").exists()
    assert not (tmp_path / "runs").exists()


def test_a_warm_start_from_a_missing_study_names_those_there(tmp_path, capsys):
    old_study(f"sqlite:///{tmp_path}/old.db", name="other")
    path = write_study_file(
        tmp_path, warm_start={"study": "old", "storage": f"sqlite:///{tmp_path}/old.db"}
    )
    code, out = run_cli(path, capsys)
    assert code == 2
    assert "no study named 'old'" in out and "(studies there: 'other')" in out
    assert not (tmp_path / "tiny.db").exists()


def test_a_warm_start_storage_that_cannot_be_opened_hides_its_password(tmp_path, capsys):
    url = "postgresql://hpo:s3cret-pw@127.0.0.1:1/none"  # nothing listens on port 1
    path = write_study_file(tmp_path, warm_start={"study": "old", "storage": url})
    code, out = run_cli(path, capsys)
    assert code == 2
    assert "warm_start: cannot open the storage postgresql+psycopg2://hpo:***@127.0.0.1:1/" in out
    assert "Connection refused" in out
    assert "s3cret-pw" not in out
    assert not (tmp_path / "tiny.db").exists()


def test_a_warm_start_from_a_study_of_the_other_direction_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/old.db"
    optuna.create_study(study_name="old", storage=url, direction="maximize")
    path = write_study_file(tmp_path, warm_start={"study": "old", "storage": url})
    code, out = run_cli(path, capsys)
    assert code == 2
    assert "directions ['maximize'], this study's objective has ['minimize']" in out
    assert not (tmp_path / "tiny.db").exists()


# ---------------------------------------------------------------------------------------------
# A changed study file


def started_study(tmp_path: Path) -> tuple[Path, dict]:
    """The tiny study file, and its study started: one trained trial."""
    path = write_study_file(tmp_path, budget={"n_trials": 1})
    assert main(["run", str(path)]) == EXIT_OK
    return path, yaml.safe_load(path.read_text())


def labelled_csv(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.csv"
    rows = [f"{'good' if i % 2 else 'bad'} words number {i},{i % 2}" for i in range(40)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def stored_state(tmp_path: Path) -> tuple[dict, int]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/tiny.db")
    return study.user_attrs, len(study.trials)


@pytest.mark.slow
def test_a_changed_objective_or_task_is_refused_and_a_changed_space_goes_on(tmp_path, capsys):
    path, study = started_study(tmp_path)
    attrs, trials = stored_state(tmp_path)
    assert attrs[STUDY_FILE_ATTR]["space"]["learning_rate"] == {
        "type": "float",
        "low": 1e-4,
        "high": 1e-2,
        "log": True,
    }
    capsys.readouterr()

    for change, expected in (
        (
            {"objective": {"metric": "eval_loss", "direction": "maximize"}},
            "objective: the study 'tiny' was run for minimize eval_loss, this file asks for "
            "maximize eval_loss",
        ),
        (
            {
                "model": {**study["model"], "task": "sequence-classification", "num_labels": 2},
                "data": {**study["data"], "files": [str(labelled_csv(tmp_path))]},
            },
            "model.task: the study 'tiny' was run with task 'causal-lm', this file asks for "
            "'sequence-classification'",
        ),
        (
            {"space": {**study["space"], "model.n_layer": {"type": "categorical", "choices": [1]}}},
            "space.model.n_layer: type int -> categorical",
        ),
    ):
        path.write_text(yaml.safe_dump({**study, **change}))
        code, out = run_cli(path, capsys)
        assert code == 2, out
        assert expected in out
        assert "give this study a new `name:`" in out
        assert stored_state(tmp_path) == (attrs, trials)  # nothing written
        # `hpo worker` joins only a study of its own objective and task too.
        code = main(["worker", str(path)])
        assert code == 2 and expected in capsys.readouterr().err
        assert stored_state(tmp_path) == (attrs, trials)

    # A changed space continues, says what changed, and records it.
    space = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "warmup_steps": {"type": "int", "low": 0, "high": 4},
    }
    path.write_text(yaml.safe_dump({**study, "space": space, "budget": {"n_trials": 2}}))
    code, out = run_cli(path, capsys)
    assert code == EXIT_OK, out
    lines = [
        "added warmup_steps (int 0..4)",
        "removed model.n_layer (int 1..2)",
        "changed learning_rate: high 0.01 -> 0.1",
    ]
    for line in lines:
        assert f"  {line}\n" in out
    attrs, _ = stored_state(tmp_path)
    assert attrs[SPACE_CHANGES_ATTR][0]["changes"] == lines
    assert set(attrs[STUDY_FILE_ATTR]["space"]) == {"learning_rate", "warmup_steps"}
    # The same file again: nothing changed, nothing printed about it.
    code, out = run_cli(path, capsys)
    assert code == EXIT_OK and "the space changed" not in out


def test_the_fingerprint_check_on_its_own():
    from hpo.backends.study_record import check_rerun, fingerprint

    spec = tiny_spec(Path("/tmp"))
    assert check_rerun(spec, None).first_record
    stored = {STUDY_FILE_ATTR: fingerprint(spec)}
    same = check_rerun(spec, stored)
    assert not same.first_record and same.space_changes == ()
    two = dataclasses.replace(
        spec, objective=ObjectiveSpec(("eval_loss", "eval_accuracy"), ("minimize", "maximize"))
    )
    with pytest.raises(Exception) as caught:
        check_rerun(two, stored)
    assert caught.value.exit_code == 2
    stepped = dataclasses.replace(
        spec,
        space=(
            ParamSpec("learning_rate", "float", low=1e-4, high=1e-2, log=True),
            ParamSpec("model.n_layer", "int", low=1, high=4, step=1),
        ),
    )
    assert check_rerun(stepped, stored).space_changes == (
        "changed model.n_layer: high 2 -> 4, step (none) -> 1",
    )


def test_a_changed_condition_or_space_function_is_a_recorded_space_change(tmp_path):
    """The record holds each param's `when` and the Python space's reference: changing one
    is reported (and recorded on the study, here a real SQLite one) as a space change."""
    from hpo.backends.study_record import check_stored, record

    optim = ParamSpec("optim", "categorical", choices=("adamw_torch", "sgd"))
    beta2 = ParamSpec("adam_beta2", "float", 0.9, 0.99, when=(("optim", ("adamw_torch",)),))
    spec = dataclasses.replace(tiny_spec(tmp_path), space=(optim, beta2))
    study = optuna.create_study(study_name=spec.name, storage=spec.storage)
    rerun, stored = check_stored(spec)
    record(rerun, study.set_user_attr, stored)
    assert study.user_attrs[STUDY_FILE_ATTR]["space"]["adam_beta2"]["when"] == {
        "optim": ["adamw_torch"]
    }
    assert check_stored(spec)[0].space_changes == ()

    either = dataclasses.replace(beta2, when=(("optim", ("adamw_torch", "sgd")),))
    rerun, stored = check_stored(dataclasses.replace(spec, space=(optim, either)))
    assert rerun.space_changes == (
        "changed adam_beta2: when {'optim': ['adamw_torch']} -> {'optim': ['adamw_torch', 'sgd']}",
    )
    assert record(rerun, study.set_user_attr, stored)[1:] == [f"  {rerun.space_changes[0]}"]

    python = dataclasses.replace(spec, space=(), space_function="helpers.spaces:optim_space")
    rerun, stored = check_stored(python)
    assert rerun.space_changes[0] == "space function (none) -> 'helpers.spaces:optim_space'"
    record(rerun, study.set_user_attr, stored)
    other = dataclasses.replace(python, space_function="helpers.spaces:scheduler_space")
    assert check_stored(other)[0].space_changes == (
        "space function 'helpers.spaces:optim_space' -> 'helpers.spaces:scheduler_space'",
    )
    assert check_stored(python)[0].space_changes == ()
    assert len(study.user_attrs[SPACE_CHANGES_ATTR]) == 2


# ---------------------------------------------------------------------------------------------
# Copies count against nothing and are never the best


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/copies.db"
    return request.getfixturevalue("pg_url")


def test_copies_are_in_no_count_and_never_the_best(any_url, tmp_path):
    from hpo.backends.optuna.budget import count_trials
    from hpo.backends.warm_start import copies_of
    from hpo.storage.optuna_compat import best_finished_value
    from hpo.storage.rdb import open_storage
    from hpo.storage.retention import best_trial_numbers

    old_study(any_url)
    spec = dataclasses.replace(tiny_spec(tmp_path), storage=any_url)
    study = optuna.create_study(study_name="tiny", storage=open_storage(any_url))
    old = optuna.load_study(study_name="old", storage=any_url).get_trials()
    copies, _ = copies_of(spec, old, "old")
    study.add_trials(copies)  # values 2.5, 2.0, 1.5: better than any trained trial below
    for value in (4.0, 3.0):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        study.tell(trial, value)

    counts = count_trials(study)
    assert (counts.complete, counts.warm_started, counts.finished) == (2, 3, 2)
    assert counts.total == 5
    assert best_finished_value(study, "minimize") == 3.0
    assert best_trial_numbers(study) == [4]
    status = reader.status(any_url, "tiny")
    assert status["counts"]["COMPLETE"] == 2 and status["warm_start"] == 3
    assert status["best"]["number"] == 4
    assert reader.best(any_url, "tiny")["value"] == 3.0

    from hpo.report.status import format_status

    assert "warm     3 complete trial(s) copied from an earlier study" in format_status(status)

    # The report's table marks them, with where they came from.
    from hpo.report.html.data import load_study_data
    from hpo.report.html.table import top_trials_table

    table = top_trials_table(load_study_data(spec))
    assert table.count("warm start (old #") == 3 and "warm start (old #3)" in table


def test_a_missing_warm_start_creates_no_tables_in_a_postgresql_storage(tmp_path, pg_url, capsys):
    import sqlalchemy

    path = write_study_file(
        tmp_path, storage=pg_url, warm_start={"study": "old", "storage": pg_url}
    )
    code, out = run_cli(path, capsys)
    assert code == 2
    assert "warm_start: no study named 'old'" in out
    engine = sqlalchemy.create_engine(pg_url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
