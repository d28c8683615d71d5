"""The Tune trainable: our Trainer on one trial's config, inside a Ray worker process.

Every trial reports at each evaluation with a checkpoint of the trainer, and resumes from the
checkpoint Tune hands back (a PBT exploit, a retry after a failure, a restore). The data cache
is built once by the driver; each worker process opens it (memory mapped) once and keeps it
for every trial it runs (Tune reuses the actors).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hpo.attrs import STEP_KEY
from hpo.spec import StudySpec

# One context per study per worker process: datasets opened once, model_init built once.
_CONTEXTS: dict[str, Any] = {}


def trial_resources(spec: StudySpec) -> dict[str, float]:
    """What one trial asks Ray for (`ray.resources_per_trial`; 1 CPU and no GPU by default)."""
    resources = spec.ray.get("resources_per_trial") or {}
    return {"cpu": float(resources.get("cpu", 1)), "gpu": float(resources.get("gpu", 0))}


def ray_trial_output_dir(root: str | Path, trial_id: str) -> Path:
    """A Ray trial's own folder under training.output_dir (the mirror records it)."""
    return Path(root) / f"ray-{trial_id}"


def train_ray_trial(config: dict[str, Any], *, spec: StudySpec, cache_dir: str) -> None:
    """One Tune trial: our Trainer on the trial's config dict.

    The trainer's Ray reporter calls `tune.report(..., checkpoint=...)` at every evaluation
    and resumes from `tune.get_checkpoint()` when Tune hands one back.
    """
    import torch
    from ray import tune

    from hpo.backends.objective import train_trial

    # As many threads as the CPUs Ray gave the trial (one for a fractional or zero CPU).
    torch.set_num_threads(max(1, int(trial_resources(spec)["cpu"])))
    context = _context(spec, cache_dir)
    output_dir = ray_trial_output_dir(spec.output_dir, tune.get_context().get_trial_id())
    if tune.get_checkpoint() is not None:
        # A restart (PBT exploit, retry, restore) writes beside the first attempt's
        # checkpoints, never over them: the trainer resumes from Tune's checkpoint.
        output_dir = output_dir / f"resumed-{uuid.uuid4().hex[:8]}"
    # A resumed run trains with this trial's (possibly mutated) params: the trainer puts them
    # back over the ones restored from the checkpoint's optimizer and scheduler.
    output = train_trial(context, dict(config), output_dir=output_dir)
    _report_final_evaluation(spec, output)


def _context(spec: StudySpec, cache_dir: str) -> Any:
    """This worker process's TrialContext for the study, built on its first trial."""
    from hpo.backends.objective import TrialContext
    from hpo.data import study_collator, study_metric_functions, study_model_init
    from hpo.data.cache import open_datasets, prepare_data_cache

    key = f"{spec.name}:{cache_dir}"
    context = _CONTEXTS.get(key)
    if context is None:
        cache = Path(cache_dir)
        if not (cache / "meta.json").exists():  # another node of a cluster: build it once here
            cache = prepare_data_cache(spec)
        train, evaluation = open_datasets(cache, spec.data.max_eval_samples)
        metrics = study_metric_functions(spec)
        collator = study_collator(spec)
        context = TrialContext(
            spec=spec,
            train_dataset=train,
            eval_dataset=evaluation,
            compute_metrics=metrics.compute_metrics,
            preprocess_logits_for_metrics=metrics.preprocess_logits_for_metrics,
            model_init=study_model_init(spec, collator),
            data_collator=collator,
        )
        _CONTEXTS[key] = context
    return context


def _report_final_evaluation(spec: StudySpec, output: Any) -> None:
    """The trainer evaluates once more at the end when max_steps is not a multiple of
    eval_steps, without reporting it: report it, so the final value is the run's last."""
    from ray import tune

    eval_steps = spec.training.get("eval_steps")
    if spec.training.get("eval_strategy") != "steps" or not eval_steps:
        return
    if output.global_step % int(eval_steps) == 0:
        return
    metrics = {
        key: float(value)
        for key, value in output.metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    tune.report({**metrics, STEP_KEY: output.global_step})
