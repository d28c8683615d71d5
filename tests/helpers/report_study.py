"""A tiny real study that runs long enough to be watched, and prunes: for the live view and the
report tests (`hpo run` on the study file `write_watched_study` writes)."""

from __future__ import annotations

from pathlib import Path

from helpers.study_files import write_study_file


def write_watched_study(
    tmp_path: Path, *, n_trials: int = 2, workers: int = 1, max_steps: int = 24
) -> Path:
    """Trials of `max_steps` steps, logged every 4 steps and evaluated at each third (so a trial
    is seen running between evaluations); after two trials the percentile pruner stops any trial
    outside the best quarter of what the others reported at the same step."""
    third = max(1, max_steps // 3)
    return write_study_file(
        tmp_path,
        budget={"n_trials": n_trials},
        workers=workers,
        pruner={
            "name": "percentile",
            "percentile": 25.0,
            "n_startup_trials": 2,
            "n_warmup_steps": 0,
        },
        training={
            "max_steps": max_steps,
            "eval_steps": third,
            "logging_steps": 4,
            "save_steps": third,
        },
    )
