"""Checkpoint retention across trials, on real folders and a real SQLite study."""

from __future__ import annotations

from pathlib import Path

import optuna
from helpers.study_files import tiny_spec
from optuna.trial import TrialState, create_trial

from hpo.spec import ObjectiveSpec
from hpo.storage.retention import TrialFiles, apply_retention, plan_deletions


def make_checkpoints(trial_dir: Path, *steps: int) -> list[Path]:
    paths = []
    for step in steps:
        path = trial_dir / f"checkpoint-{step}"
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"weights")
        paths.append(path)
    return paths


def add_trial(study, state, value, output_dir, best=None, last=None, retry_of=None):
    attrs = {"output_dir": str(output_dir)}
    if best:
        attrs["best_checkpoint"] = str(best)
    if last:
        attrs["last_checkpoint"] = str(last)
    study.add_trial(
        create_trial(
            state=state,
            value=value if state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs=attrs,
            system_attrs={"failed_trial": retry_of} if retry_of is not None else {},
        )
    )


def remaining(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.glob("trial-*/checkpoint-*")}


def test_keeps_the_best_checkpoint_of_the_best_trial_and_what_retries_need(tmp_path):
    spec = tiny_spec(tmp_path)
    root = Path(spec.output_dir)
    study = optuna.create_study(storage=spec.storage, study_name=spec.name)
    best_dir, worse_dir, pruned_dir = root / "trial-0000", root / "trial-0001", root / "trial-0002"
    failed_dir, running_dir = root / "trial-0003", root / "trial-0004"
    best_ckpts = make_checkpoints(best_dir, 4, 8)
    worse_ckpts = make_checkpoints(worse_dir, 4, 8)
    make_checkpoints(pruned_dir, 4)
    failed_ckpts = make_checkpoints(failed_dir, 4, 6)
    make_checkpoints(running_dir, 4)
    add_trial(study, TrialState.COMPLETE, 1.0, best_dir, best=best_ckpts[0], last=best_ckpts[1])
    add_trial(study, TrialState.COMPLETE, 2.0, worse_dir, best=worse_ckpts[1], last=worse_ckpts[1])
    add_trial(study, TrialState.PRUNED, 3.0, pruned_dir)
    # A trial whose worker died: FAIL, and its WAITING copy (same folder) will resume it.
    add_trial(study, TrialState.FAIL, None, failed_dir, last=failed_ckpts[1])
    add_trial(study, TrialState.WAITING, None, failed_dir, last=failed_ckpts[1], retry_of=3)
    add_trial(study, TrialState.RUNNING, None, running_dir)
    outside = make_checkpoints(tmp_path / "elsewhere" / "trial-0009", 4)[0]
    add_trial(study, TrialState.COMPLETE, 5.0, outside.parent)

    deleted = apply_retention(spec, study)

    assert remaining(root) == {
        "trial-0000/checkpoint-4",  # the best trial's best checkpoint (not its newest)
        "trial-0003/checkpoint-4",  # a trial to be retried keeps its folder ...
        "trial-0003/checkpoint-6",  # ... including the checkpoint it resumes from
        "trial-0004/checkpoint-4",  # a running trial is never touched
    }
    assert sorted(deleted) == sorted([best_ckpts[1], *worse_ckpts, pruned_dir / "checkpoint-4"])
    assert outside.is_dir()  # nothing outside the study's output folder is deleted


def test_keep_all_deletes_nothing(tmp_path):
    import dataclasses

    spec = dataclasses.replace(tiny_spec(tmp_path), keep="all")
    study = optuna.create_study(storage=spec.storage, study_name=spec.name)
    trial_dir = Path(spec.output_dir) / "trial-0000"
    make_checkpoints(trial_dir, 4, 8)
    add_trial(study, TrialState.PRUNED, 3.0, trial_dir)
    assert apply_retention(spec, study) == []
    assert remaining(Path(spec.output_dir)) == {
        "trial-0000/checkpoint-4",
        "trial-0000/checkpoint-8",
    }


def test_multi_objective_keeps_every_pareto_optimal_trial(tmp_path):
    import dataclasses

    spec = dataclasses.replace(
        tiny_spec(tmp_path), objective=ObjectiveSpec(("a", "b"), ("minimize", "minimize"))
    )
    root = Path(spec.output_dir)
    trials = [
        TrialFiles(
            0,
            "COMPLETE",
            str(root / "trial-0000"),
            best_checkpoint=str(root / "trial-0000/checkpoint-2"),
        ),
        TrialFiles(
            1,
            "COMPLETE",
            str(root / "trial-0001"),
            last_checkpoint=str(root / "trial-0001/checkpoint-2"),
        ),
        TrialFiles(2, "COMPLETE", str(root / "trial-0002")),
    ]
    for number in range(3):
        make_checkpoints(root / f"trial-{number:04d}", 2)
    deletions = plan_deletions(trials, keep_trials=[0, 1], root=root)
    assert deletions == [root / "trial-0002" / "checkpoint-2"]


def test_never_deletes_a_checkpoint_a_failed_trial_names_and_clears_what_it_deletes(tmp_path):
    # A trial a full disk stopped, with no retry queued (an older run, or max_failed_trials):
    # its checkpoints are what a resume needs, whatever the state of the other trials.
    spec = tiny_spec(tmp_path)
    root = Path(spec.output_dir)
    study = optuna.create_study(storage=spec.storage, study_name=spec.name)
    best_dir, worse_dir, failed_dir = root / "trial-0000", root / "trial-0001", root / "trial-0002"
    best = make_checkpoints(best_dir, 4)[0]
    worse = make_checkpoints(worse_dir, 4, 8)
    failed = make_checkpoints(failed_dir, 20, 24)
    add_trial(study, TrialState.COMPLETE, 1.0, best_dir, best=best, last=best)
    add_trial(study, TrialState.COMPLETE, 2.0, worse_dir, best=worse[0], last=worse[1])
    add_trial(study, TrialState.FAIL, None, failed_dir, best=failed[0], last=failed[1])

    deleted = apply_retention(spec, study)

    assert sorted(deleted) == sorted(worse)
    assert remaining(root) == {
        "trial-0000/checkpoint-4",
        "trial-0002/checkpoint-20",
        "trial-0002/checkpoint-24",
    }
    # Whatever the storage still names exists on disk: a deleted checkpoint's attr is cleared,
    # and only that one (the best and the failed trials still name theirs).
    named = {
        (trial.number, key): trial.user_attrs.get(key)
        for trial in optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
        for key in ("best_checkpoint", "last_checkpoint")
    }
    assert named == {
        (0, "best_checkpoint"): str(best),
        (0, "last_checkpoint"): str(best),
        (1, "best_checkpoint"): None,
        (1, "last_checkpoint"): None,
        (2, "best_checkpoint"): str(failed[0]),
        (2, "last_checkpoint"): str(failed[1]),
    }
    assert all(Path(path).is_dir() for path in named.values() if path is not None)
