"""Faults: a failing trial, a worker killed mid-trial, Ctrl-C, too many failures.

The fast tests run the worker loop (`work`) in this process; the slow ones run `hpo run` as a
real process and kill or interrupt it for real.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
import yaml
from helpers.study_files import tiny_spec, write_study_file
from helpers.waiting import wait_until
from optuna.trial import TrialState

from hpo.attrs import FAIL_REASON_ATTR, FIRST_STEP_ATTR, INTERRUPTED, RESUMED_FROM_ATTR, WORKER_ATTR
from hpo.backends import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from hpo.backends.optuna.requeue import local_worker_name, reap_dead_local_trials
from hpo.backends.optuna.shared_study import open_study
from hpo.backends.optuna.supervisor import run_study
from hpo.backends.optuna.worker import _claim, work
from hpo.spec import BudgetSpec, ParamSpec
from hpo.storage.rdb import open_storage
from hpo.study import load as load_study_file

REPO = Path(__file__).resolve().parents[4]


def load(spec) -> optuna.Study:
    return optuna.load_study(study_name=spec.name, storage=spec.storage)


def retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    return trial.system_attrs.get("failed_trial")


def running_trial_with_checkpoint(spec):
    def find():
        if not Path(spec.storage.removeprefix("sqlite:///")).exists():
            return None
        try:
            trials = load(spec).get_trials(states=(TrialState.RUNNING,))
        except Exception:  # the study (or its tables) being created right now
            return None
        return next((t for t in trials if t.user_attrs.get("last_checkpoint")), None)

    return find


def checkpoint_step(path: str) -> int:
    return int(Path(path).name.rsplit("-", 1)[1])


# ---------------------------------------------------------------------------------------------
# The budget under concurrency


def test_a_trial_asked_for_the_last_slot_already_taken_is_given_back(tmp_path):
    spec = tiny_spec(tmp_path, budget=BudgetSpec(n_trials=1))
    study = open_study(spec, open_storage(spec.storage))
    first, second = study.ask(), study.ask()  # two workers asking in the same instant
    assert not _claim(spec, study, second)
    assert study.get_trials()[second.number].state == TrialState.WAITING
    assert _claim(spec, study, first)
    assert study.get_trials()[first.number].state == TrialState.RUNNING


# ---------------------------------------------------------------------------------------------
# A dead worker's trial is re-queued with what it needs to resume


def test_the_trial_of_a_dead_local_worker_is_failed_and_queued_with_its_progress(tmp_path):
    spec = tiny_spec(tmp_path)
    study = open_study(spec, open_storage(spec.storage))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    trial.report(3.0, 4)
    trial.report(2.5, 8)
    trial.set_user_attr(WORKER_ATTR, local_worker_name(dead.pid))
    trial.set_user_attr("last_checkpoint", str(tmp_path / "checkpoint-8"))
    alive = study.ask()
    alive.set_user_attr(WORKER_ATTR, local_worker_name())  # this process: alive

    assert reap_dead_local_trials(study) == [trial.number]
    trials = study.get_trials()
    failed = trials[trial.number]
    assert failed.state == TrialState.FAIL
    assert f"worker process {dead.pid} is gone" in failed.user_attrs[FAIL_REASON_ATTR]
    assert trials[alive.number].state == TrialState.RUNNING
    (retry,) = [t for t in trials if retry_of(t) == trial.number]
    assert retry.state == TrialState.WAITING
    assert retry.params == failed.params
    assert retry.intermediate_values == {4: 3.0, 8: 2.5}
    assert retry.user_attrs["last_checkpoint"] == str(tmp_path / "checkpoint-8")
    assert FAIL_REASON_ATTR not in retry.user_attrs


# ---------------------------------------------------------------------------------------------
# A trial that raises


@pytest.mark.slow
def test_an_exception_in_one_trial_fails_it_with_the_reason_and_the_study_goes_on(tmp_path):
    space = (
        ParamSpec("learning_rate", "float", low=1e-4, high=1e-2, log=True),
        ParamSpec("model.n_head", "categorical", choices=(2, 3)),  # n_embd 32: 3 heads fail
    )
    spec = tiny_spec(tmp_path, space=space, budget=BudgetSpec(n_trials=2))
    study = open_study(spec, open_storage(spec.storage))
    study.enqueue_trial({"model.n_head": 3})
    study.enqueue_trial({"model.n_head": 2})
    study.enqueue_trial({"model.n_head": 2})
    assert work(spec) == EXIT_OK
    trials = load(spec).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    reason = trials[0].user_attrs[FAIL_REASON_ATTR]
    assert "n_head" in reason or "divisible" in reason
    assert trials[0].params == {
        "learning_rate": trials[0].params["learning_rate"],
        "model.n_head": 3,
    }


# ---------------------------------------------------------------------------------------------
# Stopping a worker (what Ctrl-C does) and resuming its trial


@pytest.mark.slow
def test_a_stopped_trial_is_checkpointed_queued_and_resumed_without_repeating_steps(tmp_path):
    spec = tiny_spec(
        tmp_path,
        budget=BudgetSpec(n_trials=1),
        training={"max_steps": 24, "eval_steps": 4, "logging_steps": 4},
    )
    stop = threading.Event()
    codes = []
    worker = threading.Thread(target=lambda: codes.append(work(spec, stop=stop)))
    worker.start()
    try:
        running = wait_until(
            running_trial_with_checkpoint(spec), interval=0.05, what="a checkpoint"
        )
    finally:
        stop.set()
        worker.join()
    assert codes == [EXIT_INTERRUPTED]
    trials = load(spec).get_trials()
    stopped = trials[running.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs[FAIL_REASON_ATTR] == INTERRUPTED
    stop_checkpoint = stopped.user_attrs["last_checkpoint"]
    stop_step = checkpoint_step(stop_checkpoint)
    assert Path(stop_checkpoint).is_dir() and stop_step >= 4
    (queued,) = [t for t in trials if retry_of(t) == stopped.number]
    assert queued.state == TrialState.WAITING

    # The next run resumes it: same params and folder, training starts after the checkpoint.
    assert work(spec) == EXIT_OK
    trials = load(spec).get_trials()
    resumed = trials[queued.number]
    assert resumed.state == TrialState.COMPLETE
    assert resumed.params == stopped.params
    assert resumed.user_attrs[RESUMED_FROM_ATTR] == stop_checkpoint
    assert resumed.user_attrs[FIRST_STEP_ATTR] == stop_step + 1
    assert resumed.user_attrs["output_dir"] == stopped.user_attrs["output_dir"]
    assert sorted(resumed.intermediate_values) == list(range(4, 25, 4))
    for step, value in stopped.intermediate_values.items():
        assert resumed.intermediate_values[step] == value
    # Interrupted trials do not count as failures, nor toward the budget.
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 1


# ---------------------------------------------------------------------------------------------
# Real processes: SIGKILL of a worker, SIGINT to `hpo run`


def hpo(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HPO_STORAGE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


LONG_TRIALS = {"max_steps": 20, "eval_steps": 4, "logging_steps": 4}
# Long enough that a SIGINT sent after the first checkpoint still lands mid-trial on a loaded box.
LONGER_TRIALS = {**LONG_TRIALS, "max_steps": 60}


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_resumes_from_its_checkpoint(
    tmp_path, capsys
):
    # 60 steps: a kill sent after the first checkpoint must still find the worker mid-trial on a
    # loaded box (with 20, the trial once ended between the poll and the kill).
    spec = tiny_spec(tmp_path, budget=BudgetSpec(n_trials=1), training=LONGER_TRIALS)
    codes = []
    # The orchestrator runs in a thread of this process; its workers are real processes.
    orchestrator = threading.Thread(target=lambda: codes.append(run_study(spec)))
    orchestrator.start()
    try:
        victim = wait_until(running_trial_with_checkpoint(spec), interval=0.05, what="a checkpoint")
        pid = int(victim.user_attrs[WORKER_ATTR].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
    finally:
        orchestrator.join(timeout=240)
    out = capsys.readouterr().out
    assert codes == [EXIT_OK], out
    assert "killed by signal 9" in out
    trials = load(spec).get_trials()
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "killed by signal 9" in killed.user_attrs[FAIL_REASON_ATTR]
    (retry,) = [t for t in trials if retry_of(t) == victim.number]
    assert retry.state == TrialState.COMPLETE
    checkpoint = retry.user_attrs[RESUMED_FROM_ATTR]
    assert checkpoint_step(checkpoint) >= 4
    # Resumed, not restarted: its first trained step follows the checkpoint.
    assert retry.user_attrs[FIRST_STEP_ATTR] == checkpoint_step(checkpoint) + 1
    assert sorted(retry.intermediate_values) == list(range(4, 61, 4))
    for step, value in killed.intermediate_values.items():
        assert retry.intermediate_values[step] == value
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert finished == [retry]


@pytest.mark.slow
def test_ctrl_c_checkpoints_running_trials_and_a_rerun_continues_the_study(tmp_path):
    study_file = write_study_file(tmp_path, budget={"n_trials": 1}, training=LONGER_TRIALS)
    spec = tiny_spec(tmp_path)
    run = hpo("run", str(study_file), cwd=tmp_path)
    try:
        victim = wait_until(running_trial_with_checkpoint(spec), interval=0.05, what="a checkpoint")
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == EXIT_INTERRUPTED, out
    assert "continues the study" in out
    trials = load(spec).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    stopped = trials[victim.number]
    assert stopped.user_attrs[FAIL_REASON_ATTR] == INTERRUPTED
    assert [t.state for t in trials if retry_of(t) == victim.number] == [TrialState.WAITING]

    # Running `hpo run study.yaml` again (what the command does, in this process).
    assert run_study(load_study_file(study_file)) == EXIT_OK
    trials = load(spec).get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # no number used twice
    (resumed,) = [t for t in trials if retry_of(t) == victim.number]
    assert [t for t in trials if t.state == TrialState.COMPLETE] == [resumed]
    assert resumed.user_attrs[FIRST_STEP_ATTR] == (
        checkpoint_step(stopped.user_attrs["last_checkpoint"]) + 1
    )


# ---------------------------------------------------------------------------------------------
# Too many failures


@pytest.mark.slow
def test_more_failures_than_max_failed_trials_stop_the_study_with_a_clear_message(tmp_path, capsys):
    spec = tiny_spec(
        tmp_path,
        workers=2,
        budget=BudgetSpec(n_trials=6, max_failed_trials=1),
        space=(ParamSpec("model.n_head", "categorical", choices=(3,)),),
    )
    assert run_study(spec) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "more than budget.max_failed_trials=1" in captured.err
    trials = load(spec).get_trials()
    assert 2 <= len(trials) <= 3  # both workers may have started one before the stop
    assert all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs[FAIL_REASON_ATTR] for t in trials)


def test_work_reports_too_many_failures(tmp_path):
    spec = tiny_spec(
        tmp_path,
        budget=BudgetSpec(n_trials=6, max_failed_trials=0),
        space=(ParamSpec("model.n_head", "categorical", choices=(3,)),),
    )
    assert work(dataclasses.replace(spec)) == EXIT_FAILED
    assert [t.state for t in load(spec).get_trials()] == [TrialState.FAIL]


@pytest.mark.slow
def test_workers_that_cannot_start_make_the_run_fail_with_their_error(tmp_path, capfd):
    spec = tiny_spec(tmp_path, workers=2)
    broken = dataclasses.replace(
        spec, data=dataclasses.replace(spec.data, files=(str(tmp_path / "missing.txt"),))
    )
    assert run_study(broken) == 1
    # Each worker prints its own error (naming missing.txt) on the fork server's stderr,
    # which pytest cannot capture once that server is up; the run's verdict is ours.
    assert "every worker stopped with an error" in capfd.readouterr().err
    assert load(spec).get_trials() == []  # no trial was started, none is left RUNNING


def test_a_resume_reports_the_evaluations_its_checkpoint_has_but_the_storage_lacks(tmp_path):
    # A worker killed between saving checkpoint-N and reporting step N leaves that gap.
    from hpo.backends.objective import prepare, train_trial
    from hpo.backends.optuna.requeue import backfill_reports
    from hpo.search.space import suggest

    spec = tiny_spec(tmp_path)
    study = optuna.create_study(storage=spec.storage, study_name=spec.name)
    trained = study.ask()
    suggest(trained, spec.space)
    train_trial(prepare(spec), trained, output_dir=tmp_path / "trained")
    reported = study.get_trials()[0].intermediate_values
    assert sorted(reported) == [4, 8]

    resumed = study.ask()
    resumed.report(reported[8], 8)  # step 8 made it to the storage, step 4 did not
    assert backfill_reports(resumed, str(tmp_path / "trained" / "checkpoint-8"), "eval_loss") == [4]
    assert study.get_trials()[1].intermediate_values == reported


# ---------------------------------------------------------------------------------------------
# Killed between writing a checkpoint and recording it


@pytest.mark.slow
def test_a_worker_killed_between_saving_and_recording_a_checkpoint_resumes_from_it(
    tmp_path, capsys
):
    # The worker dies when checkpoint-8 is on disk but the storage still names checkpoint-4:
    # the old order (rotate, then record) had deleted checkpoint-4 by then, and the retry
    # trained from step 0 without saying so.
    from helpers.study_files import tiny_gpt2_config

    from hpo.spec import ModelSpec

    marker = tmp_path / "killed"
    model = ModelSpec(
        task="causal-lm",
        factory="helpers.fault_models:gpt2_killed_before_record",
        config={**tiny_gpt2_config(n_positions=32), "kill_at_step": 8, "marker": str(marker)},
    )
    spec = tiny_spec(
        tmp_path,
        budget=BudgetSpec(n_trials=1),
        model=model,
        space=(ParamSpec("learning_rate", "float", low=3e-3, high=5e-3),),
        training={"max_steps": 12, "eval_steps": 4, "logging_steps": 4},
    )
    assert run_study(spec) == EXIT_OK, capsys.readouterr().out
    assert marker.exists(), "the worker was not killed at step 8"
    trials = load(spec).get_trials()
    killed = next(t for t in trials if t.state == TrialState.FAIL)
    assert "killed by signal 9" in killed.user_attrs[FAIL_REASON_ATTR]
    assert checkpoint_step(killed.user_attrs["last_checkpoint"]) == 4  # 8 was never recorded
    (retry,) = [t for t in trials if retry_of(t) == killed.number]
    assert retry.state == TrialState.COMPLETE
    # The newest complete checkpoint of the trial's folder, not step 0 and not the older one.
    assert checkpoint_step(retry.user_attrs[RESUMED_FROM_ATTR]) == 8
    assert retry.user_attrs[FIRST_STEP_ATTR] == 9
    assert sorted(retry.intermediate_values) == [4, 8, 12]


def test_a_retry_resumes_from_the_newest_complete_checkpoint_of_its_folder(tmp_path):
    from hpo.backends.optuna.resume import resume_point

    def checkpoint(step: int, complete: bool = True) -> Path:
        folder = tmp_path / "trial-0000" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
        return folder

    folder = str(tmp_path / "trial-0000")
    assert resume_point(folder, None) is None
    four = checkpoint(4)
    assert resume_point(folder, str(four)) == str(four)
    eight = checkpoint(8)
    checkpoint(12, complete=False)  # a half-written one (no trainer_state.json) never counts
    # Recorded: 4, or a deleted folder, or nothing: the newest complete one wins.
    assert resume_point(folder, str(four)) == str(eight)
    assert resume_point(folder, str(tmp_path / "trial-0000" / "checkpoint-0")) == str(eight)
    assert resume_point(folder, None) == str(eight)
    # A recorded checkpoint outside the folder is used when the folder holds none.
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    assert resume_point(str(tmp_path / "empty"), str(elsewhere)) == str(elsewhere)


# ---------------------------------------------------------------------------------------------
# A full or read-only disk under training.output_dir


@pytest.fixture
def small_disk(tmp_path):
    """A real 700 KiB tmpfs: room for the data cache and one checkpoint of the tiny study
    (about 470 KiB), not for two. Skipped where mounting is not permitted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs `mount -t tmpfs` (root): {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_keeps_the_checkpoint_and_the_trial_resumes(tmp_path, small_disk):
    output_dir = small_disk / "runs"
    study_file = write_study_file(
        tmp_path,
        budget={"n_trials": 4},
        training={**LONG_TRIALS, "max_steps": 12, "output_dir": str(output_dir)},
    )
    # Every trial of the same size (2 layers), so that exactly one checkpoint fits.
    study = yaml.safe_load(study_file.read_text())
    del study["space"]["model.n_layer"]
    study_file.write_text(yaml.safe_dump(study))
    run = hpo("run", str(study_file), cwd=tmp_path)
    out, _ = run.communicate(timeout=300)
    # (a) the run stops at the first refused save, with the cause and the fix, exit 1 ...
    assert run.returncode == EXIT_FAILED, out
    assert "No space left on device" in out
    assert "free space on that disk or move training.output_dir" in out
    assert "Traceback" not in out
    spec = load_study_file(study_file)
    trials = load(spec).get_trials()
    # ... instead of failing every trial of the budget one after the other.
    (stopped,) = [t for t in trials if t.state == TrialState.FAIL]
    assert "No space left on device" in stopped.user_attrs[FAIL_REASON_ATTR]
    assert not [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING)]
    # (b) retryable: queued with its progress; (c) the checkpoint it names survived the run.
    (queued,) = [t for t in trials if retry_of(t) == stopped.number]
    assert queued.state == TrialState.WAITING
    kept = stopped.user_attrs["last_checkpoint"]
    assert checkpoint_step(kept) == 4 and Path(kept).is_dir()

    # Room made: the same command resumes the stopped trial from that checkpoint.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    rerun = hpo("run", str(study_file), cwd=tmp_path)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == EXIT_OK, out
    trials = load(spec).get_trials()
    resumed = trials[queued.number]
    assert resumed.state == TrialState.COMPLETE
    assert resumed.user_attrs[RESUMED_FROM_ATTR] == kept
    assert resumed.user_attrs[FIRST_STEP_ATTR] == 5
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 4


def test_a_read_only_output_dir_is_one_clear_error_before_anything_is_created(tmp_path, run_hpo):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs `mount -t tmpfs` (root): {mounted.stderr.strip()}")
    try:
        study_file = write_study_file(tmp_path, training={"output_dir": str(read_only / "runs")})
        run = run_hpo("run", str(study_file), cwd=tmp_path, timeout_s=120)
        out = run.output
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)
    assert run.returncode == 1, out
    assert out.strip() == (
        f"error: training.output_dir '{read_only / 'runs'}' cannot be written "
        "(Read-only file system); point it at a writable folder"
    )
    assert not (tmp_path / "tiny.db").exists()  # the storage was not created


def test_a_retry_resumes_from_the_newest_checkpoint_when_the_recorded_one_was_rotated(tmp_path):
    # Killed between writing checkpoint-8 (rotating checkpoint-4 away) and recording it.
    from hpo.backends.optuna.resume import resume_point

    for step in (8, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text("{}")
    # checkpoint-12 is incomplete (no trainer state): never resumed from.
    recorded = str(tmp_path / "checkpoint-4")
    assert resume_point(str(tmp_path), recorded) == str(tmp_path / "checkpoint-8")
    assert resume_point(str(tmp_path), str(tmp_path / "checkpoint-8")) == str(
        tmp_path / "checkpoint-8"
    )
    assert resume_point(str(tmp_path / "nothing"), None) is None
