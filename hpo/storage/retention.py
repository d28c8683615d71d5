"""Checkpoint retention across trials: keep what someone will load, delete the rest.

Kept:
- the best checkpoint of the best trial (of every Pareto-optimal trial, multi-objective);
- everything in the output folder of a trial that is RUNNING or WAITING (a retry resumes
  from its latest checkpoint; a running trainer rotates its own checkpoints, and deleting
  under it would race with its saves).
- every checkpoint a FAIL trial names (`last_checkpoint`, `best_checkpoint`): a trial a full
  disk or a crash stopped is resumed from it, by a retry or by hand.
Deleted: the other `checkpoint-*` folders of finished trials, inside the study's output
folder only. The storage never names a deleted checkpoint: a finished trial's attr that
names one is cleared (set to None) before the folder goes, as the trainer records a new
checkpoint before it deletes the old one. `keep: all` in the study file turns retention off.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.attrs import (
    BEST_CHECKPOINT_ATTR,
    LAST_CHECKPOINT_ATTR,
    OUTPUT_DIR_ATTR,
    WARM_START_ATTR,
)
from hpo.spec import StudySpec

if TYPE_CHECKING:
    import optuna

CHECKPOINT_GLOB = "checkpoint-*"


@dataclass(frozen=True)
class TrialFiles:
    """What retention needs to know about one trial."""

    number: int
    state: str  # optuna TrialState name: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    output_dir: str | None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None

    @property
    def checkpoints(self) -> list[str]:
        """The checkpoints the storage names for this trial."""
        return [p for p in (self.best_checkpoint, self.last_checkpoint) if p]


def plan_deletions(
    trials: Iterable[TrialFiles], keep_trials: Iterable[int], root: str | Path
) -> list[Path]:
    """The checkpoint folders to delete.

    `keep_trials` are the numbers of the best trial(s), whose best checkpoint stays. Only
    folders under `root` (the study's output folder) are ever listed.
    """
    trials = list(trials)
    root = Path(root).resolve()
    keep_numbers = set(keep_trials)
    protected_dirs: set[Path] = set()
    kept: set[Path] = set()
    for trial in trials:
        if trial.output_dir and trial.state in ("RUNNING", "WAITING"):
            protected_dirs.add(Path(trial.output_dir).resolve())
        if trial.number in keep_numbers:
            best = trial.best_checkpoint or trial.last_checkpoint
            if best:
                kept.add(Path(best).resolve())
        if trial.state == "FAIL":
            kept.update(Path(p).resolve() for p in trial.checkpoints)
    deletions: list[Path] = []
    seen: set[Path] = set()
    for trial in trials:
        if not trial.output_dir or trial.state in ("RUNNING", "WAITING"):
            continue
        output_dir = Path(trial.output_dir).resolve()
        if output_dir in protected_dirs or output_dir in seen or not _inside(output_dir, root):
            continue
        seen.add(output_dir)
        # Recursive: a resumed Ray trial writes into a `resumed-*` folder of its own folder.
        for checkpoint in sorted(output_dir.rglob(CHECKPOINT_GLOB)):
            if checkpoint.is_dir() and checkpoint.resolve() not in kept:
                deletions.append(checkpoint)
    return deletions


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def trial_files(trial: Any) -> TrialFiles:
    """A TrialFiles from an optuna FrozenTrial."""
    attrs = trial.user_attrs
    return TrialFiles(
        number=trial.number,
        state=trial.state.name,
        output_dir=attrs.get(OUTPUT_DIR_ATTR),
        best_checkpoint=attrs.get(BEST_CHECKPOINT_ATTR),
        last_checkpoint=attrs.get(LAST_CHECKPOINT_ATTR),
    )


def best_trial_numbers(study: optuna.Study) -> list[int]:
    """The best trial, or every trial on the Pareto front; none before the first COMPLETE.

    Of the trials trained here: a warm-start copy (`WARM_START_ATTR`) has no checkpoint, and
    were it the best, the best trained trial's checkpoint would be deleted."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    trained = [t for t in complete if WARM_START_ATTR not in t.user_attrs]
    if len(trained) == len(complete):
        try:
            return [t.number for t in study.best_trials]
        except ValueError:
            return []
    if not trained:
        return []
    # optuna's best_trials over the trained trials alone (the same rule), in a study in memory
    # whose trial numbers are positions in `trained`.
    alone = optuna.create_study(directions=study.directions)
    alone.add_trials(trained)
    return sorted(trained[t.number].number for t in alone.best_trials)


def apply_retention(spec: StudySpec, study: optuna.Study) -> list[Path]:
    """Delete the checkpoints no one needs any more; returns what was deleted."""
    if spec.keep == "all":
        return []
    frozen = study.get_trials(deepcopy=False)
    deletions = plan_deletions(
        [trial_files(t) for t in frozen], best_trial_numbers(study), spec.output_dir
    )
    _forget(study, frozen, {path.resolve() for path in deletions})
    for path in deletions:
        shutil.rmtree(path, ignore_errors=True)
    return deletions


def _forget(study: optuna.Study, trials: Iterable[Any], doomed: set[Path]) -> None:
    """Clear the attrs that name a checkpoint about to be deleted (first, so that a crash
    in between leaves a missing record, never a record of a missing folder)."""
    from hpo.storage.optuna_compat import clear_user_attr, trial_id_of

    for trial in trials:
        for key in (BEST_CHECKPOINT_ATTR, LAST_CHECKPOINT_ATTR):
            path = trial.user_attrs.get(key)
            if path and Path(str(path)).resolve() in doomed:
                clear_user_attr(study, trial_id_of(trial), key)
