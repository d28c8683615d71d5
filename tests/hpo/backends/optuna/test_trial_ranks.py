"""`trial_processes: 2`: each trial trained by two processes (gloo) through `hpo run`'s workers.

Real ranks (subprocesses), a real process group, real SIGKILLs; the storage says how each trial
ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from helpers.study_files import tiny_spec, write_study_file
from optuna.trial import TrialState

from hpo.attrs import (
    FAIL_REASON_ATTR,
    FIRST_STEP_ATTR,
    INTERRUPTED,
    LAST_CHECKPOINT_ATTR,
    RANKS_STOPPED_AT_ATTR,
    RESUMED_FROM_ATTR,
    WORLD_SIZE_ATTR,
)
from hpo.backends import EXIT_INTERRUPTED
from hpo.backends.optuna.supervisor import OptunaRun
from hpo.spec import BudgetSpec, ComponentSpec, PlacementSpec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[4]


def ddp_spec(tmp_path: Path, **changes):
    return tiny_spec(
        tmp_path,
        placement=PlacementSpec(trial_processes=2),
        budget=BudgetSpec(n_trials=1, max_failed_trials=2),
        **changes,
    )


def trials_of(spec) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()


def has_a_checkpoint(spec) -> bool:
    """Whether the study's first trial has recorded a checkpoint (False before it exists)."""
    try:
        trials = trials_of(spec)
    except Exception:  # the study (or its database) does not exist yet
        return False
    return bool(trials) and LAST_CHECKPOINT_ATTR in trials[0].user_attrs


def rank_processes() -> list[int]:
    """Pids of the ranks > 0 that `hpo.backends.trial_ranks` started (this machine)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hpo.backends.trial_ranks" in command:
            pids.append(int(entry.name))
    return pids


def test_a_two_process_trial_completes_with_its_world_size(tmp_path, capsys):
    spec = ddp_spec(tmp_path)
    assert OptunaRun(spec).run() == 0
    assert "x 2 process(es)" in capsys.readouterr().out
    [trial] = trials_of(spec)
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get(FAIL_REASON_ATTR)
    assert trial.user_attrs[WORLD_SIZE_ATTR] == 2
    assert trial.user_attrs[RANKS_STOPPED_AT_ATTR] == [8, 8]  # both ranks trained every step
    assert sorted(trial.intermediate_values) == [4, 8]
    assert not rank_processes()  # no rank left behind


def test_a_pruned_trial_stops_every_rank_at_the_same_evaluation(tmp_path):
    # ThresholdPruner(upper=0): any loss prunes at the first report (step 4 of 8).
    spec = ddp_spec(tmp_path, pruner=ComponentSpec("threshold", {"upper": 0.0}))
    assert OptunaRun(spec).run() == 0
    [trial] = trials_of(spec)
    assert trial.state == TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [4]
    assert trial.user_attrs[RANKS_STOPPED_AT_ATTR] == [4, 4]  # rank 1 obeyed rank 0's prune
    assert not rank_processes()


def test_a_killed_rank_fails_the_trial_and_its_retry_resumes_from_the_checkpoint(tmp_path):
    # Long enough that rank 1 is still training when the first checkpoint is recorded.
    spec = ddp_spec(tmp_path, training={"max_steps": 400, "eval_steps": 4, "logging_steps": 4})
    killed: list[int] = []

    def kill_rank_one_after_a_checkpoint() -> None:
        end = time.monotonic() + 600
        while time.monotonic() < end and not killed:
            if has_a_checkpoint(spec):
                for pid in rank_processes():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_rank_one_after_a_checkpoint, daemon=True)
    killer.start()
    assert OptunaRun(spec).run() == 0
    killer.join()
    assert len(killed) == 1
    first, retry = trials_of(spec)
    assert first.state == TrialState.FAIL
    assert first.user_attrs[FAIL_REASON_ATTR].startswith(
        "rank 1 of the trial was killed by signal 9 (SIGKILL)"
    )
    assert retry.state == TrialState.COMPLETE, retry.user_attrs.get(FAIL_REASON_ATTR)
    assert retry.params == first.params
    # The retry resumed from the recorded checkpoint, or from the newer one rank 0 completed
    # when rank 1 died in the barrier before it could be recorded.
    resumed_from = retry.user_attrs[RESUMED_FROM_ATTR]
    recorded = first.user_attrs[LAST_CHECKPOINT_ATTR]
    step = int(resumed_from.rsplit("-", 1)[1])
    assert Path(resumed_from).parent == Path(recorded).parent
    assert step >= int(recorded.rsplit("-", 1)[1])
    assert retry.user_attrs[FIRST_STEP_ATTR] == step + 1  # trained on from there, not from 0
    assert retry.user_attrs[WORLD_SIZE_ATTR] == 2
    assert retry.user_attrs[RANKS_STOPPED_AT_ATTR] == [400, 400]
    assert not rank_processes()


def test_ctrl_c_in_a_terminal_stops_every_rank_with_a_checkpoint(tmp_path):
    study_file = write_study_file(
        tmp_path,
        trial_processes=2,
        budget={"n_trials": 1},
        training={"max_steps": 400, "eval_steps": 4, "logging_steps": 4},
    )
    spec = ddp_spec(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HPO_STORAGE", None)
    # Its own session, so that a SIGINT to the group reaches every process as a terminal's would.
    run = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(study_file)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + 600
        while time.monotonic() < end and not has_a_checkpoint(spec):
            time.sleep(0.2)
        os.killpg(run.pid, signal.SIGINT)
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == EXIT_INTERRUPTED, out
    stopped = trials_of(spec)[0]
    assert stopped.user_attrs[FAIL_REASON_ATTR] == INTERRUPTED
    assert stopped.user_attrs[WORLD_SIZE_ATTR] == 2
    assert not rank_processes()
