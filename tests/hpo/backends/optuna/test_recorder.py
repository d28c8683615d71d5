"""StorageRecorder: what a training trial writes to the study's storage, and how often.

A real tiny GPT-2 trains in this process against a real SQLite study; hpo's storage's own
`set_trial_user_attr(s)` calls are counted (they still write) and the stored attrs are read back.
"""

from __future__ import annotations

import threading

import optuna
from helpers.study_files import tiny_spec

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    LAST_CHECKPOINT_ATTR,
    OUTPUT_DIR_ATTR,
    PROGRESS_ATTR,
    TRAIN_METRICS_ATTR,
    WORKER_ATTR,
)
from hpo.backends.objective import prepare, train_trial
from hpo.backends.optuna.recorder import StorageRecorder
from hpo.backends.optuna.trial import train_optuna_trial
from hpo.search.space import suggest
from hpo.storage.rdb import open_storage
from trainer import TrainerCallback


def count_writes(storage, writes: list[set[str]]) -> None:
    """Appends the keys of every user-attr write of `storage` to `writes` (they still write)."""
    write_one, write_many = storage.set_trial_user_attr, storage.set_trial_user_attrs

    def count_one(trial_id, key, value):
        writes.append({key})
        write_one(trial_id, key, value)

    def count_many(trial_id, attrs):
        writes.append(set(attrs))
        write_many(trial_id, attrs)

    storage.set_trial_user_attr = count_one  # type: ignore[method-assign]
    storage.set_trial_user_attrs = count_many  # type: ignore[method-assign]


class StoredProgress(TrainerCallback):
    """Reads the trial's stored progress at every step end: what the live view would see."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.seen: dict[int, int | None] = {}

    def on_step_end(self, args, state, control, **kwargs):
        progress = self.storage.get_trial(self.trial_id).user_attrs.get(PROGRESS_ATTR)
        self.seen[state.global_step] = progress["step"] if progress else None


def test_progress_rides_with_the_checkpoint_record_and_otherwise_follows_its_step(tmp_path):
    # 8 steps, a log every 2, an evaluation and a checkpoint every 4.
    spec = tiny_spec(tmp_path, training={"logging_steps": 2})
    ctx = prepare(spec)
    storage = open_storage(f"sqlite:///{tmp_path}/o.db")
    study = optuna.create_study(storage=storage, study_name="o")
    trial = study.ask()
    suggest(trial, spec.space)
    writes: list[set[str]] = []
    count_writes(storage, writes)
    probe = StoredProgress(storage, trial._trial_id)
    recorder = StorageRecorder(trial, threading.Event())
    train_trial(ctx, trial, output_dir=tmp_path / "trial-0", callbacks=[recorder, probe])

    stored = storage.get_trial(trial._trial_id).user_attrs
    assert stored[PROGRESS_ATTR]["step"] == 8 and stored[PROGRESS_ATTR]["max_steps"] == 8
    assert stored[PROGRESS_ATTR]["steps_per_s"] > 0
    assert stored[LAST_CHECKPOINT_ATTR].endswith("checkpoint-8")
    # The live view lags by at most the step in progress: the log at step 2 is stored before
    # step 3 ends; a fresh trial has nothing stored before its first log.
    assert probe.seen == {1: None, 2: None, 3: 2, 4: 2, 5: 4, 6: 4, 7: 6, 8: 6}
    # Four writes, not seven: the logs at 2 and 6 alone, the ones at 4 and 8 together with
    # their checkpoint (and the best one), nothing at train begin or end.
    assert writes == [
        {PROGRESS_ATTR},
        {LAST_CHECKPOINT_ATTR, BEST_CHECKPOINT_ATTR, PROGRESS_ATTR},
        {PROGRESS_ATTR},
        {LAST_CHECKPOINT_ATTR, PROGRESS_ATTR} | (writes[3] & {BEST_CHECKPOINT_ATTR}),
    ]


def test_the_last_progress_is_written_with_the_train_metrics(tmp_path):
    # A finished trial far better than any, so this one's last checkpoint is not written
    # (keep: best) and its last progress has no checkpoint record to ride with.
    spec = tiny_spec(tmp_path)
    ctx = prepare(spec)
    storage = open_storage(spec.storage)
    study = optuna.create_study(storage=storage, study_name=spec.name)
    study.tell(study.ask(), -1.0)
    trial = study.ask()
    writes: list[set[str]] = []
    count_writes(storage, writes)
    train_optuna_trial(ctx, trial, threading.Event())

    stored = storage.get_trial(trial._trial_id).user_attrs
    assert stored[PROGRESS_ATTR]["step"] == 8
    assert stored[LAST_CHECKPOINT_ATTR].endswith("checkpoint-4")
    # Start attrs; the log at 4 with its checkpoint; the last progress and the train metrics
    # together, where they were two writes before.
    assert writes[0] == {OUTPUT_DIR_ATTR, WORKER_ATTR}
    assert writes[1] >= {LAST_CHECKPOINT_ATTR, PROGRESS_ATTR}
    assert writes[2:] == [{PROGRESS_ATTR, TRAIN_METRICS_ATTR}]
