"""The study every worker shares, created or loaded with this worker's sampler and the study's
pruner; the heartbeat settings its storage is opened with (`hpo.storage.rdb.open_storage`)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.spec import StudySpec

if TYPE_CHECKING:
    import optuna


def pruning_note(spec: StudySpec) -> str | None:
    """Why pruning is off although the study names a pruner, or None when it is on."""
    if spec.objective.is_multi and spec.pruner.name != "none":
        return (
            f"pruning is off: Optuna cannot prune a multi-objective study (Trial.report takes "
            f"one value), so pruner {spec.pruner.name!r} is not used"
        )
    return None


def heartbeat_options(interval: int | None, grace_period: int | None) -> dict[str, Any]:
    """`open_storage`'s heartbeat keywords for the values given (None: the storage's default).

    Only tests change them (to notice a dead worker in seconds).
    """
    options = {"heartbeat_interval": interval, "grace_period": grace_period}
    return {key: value for key, value in options.items() if value is not None}


def worker_seed(seed: int, worker_index: int, trials_before: int) -> int:
    """The sampler seed of worker `worker_index` in a run that found `trials_before` trials.

    A fresh study's workers get `seed + worker_index`: the same study file reproduces the same
    search. A rerun (or a worker started later) must not replay the sequence an earlier
    worker drew, so the seed then also depends on how many trials the study already holds,
    a number that only grows.
    """
    if trials_before == 0:
        return seed + worker_index
    digest = hashlib.sha256(f"{seed}:{worker_index}:{trials_before}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def open_study(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    *,
    worker_index: int = 0,
    trials_before: int = 0,
) -> optuna.Study:
    """Create the study (or load it: reruns and other workers continue the same one) with
    this worker's sampler (seeded by `worker_seed`) and the study's pruner."""
    import optuna

    from hpo.search.components import build_pruner, build_sampler

    sampler_spec = spec.sampler
    seed = sampler_spec.options.get("seed")
    if seed is not None:
        options = {
            **sampler_spec.options,
            "seed": worker_seed(int(seed), worker_index, trials_before),
        }
        sampler_spec = dataclasses.replace(sampler_spec, options=options)
    sampler = build_sampler(sampler_spec, space=spec.space)
    pruner = (
        optuna.pruners.NopPruner() if pruning_note(spec) is not None else build_pruner(spec.pruner)
    )
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.name,
            # Validated "minimize" / "maximize" strings; optuna's stub names the Literal.
            directions=list(spec.objective.directions),  # type: ignore[arg-type]
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
    stored = [d.name.lower() for d in study.directions]
    if stored != list(spec.objective.directions):
        raise HpoError(
            f"study {spec.name!r} already exists in the storage with directions {stored}, but "
            f"the study file asks for {list(spec.objective.directions)}; give the study a new "
            "name or restore objective.direction"
        )
    return study
