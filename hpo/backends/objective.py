"""One trial, whatever the backend: the study's training args + the trial's params -> Trainer.

`prepare(spec)` does the costly, trial-independent work once per worker process (data loaded
from the on-disk cache, the model factory resolved); `train_trial` then builds only what
depends on the trial. Both the Optuna and the Ray backend call these two functions.
"""

from __future__ import annotations

import errno
import functools
import gc
import math
import os
import tempfile
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo.attrs import EVAL_PREFIX, eval_metric_key
from hpo.errors import HpoError
from hpo.spec import StudySpec


@dataclass
class TrialContext:
    """What every trial of one worker process shares: built once by `prepare`."""

    spec: StudySpec
    train_dataset: Any
    eval_dataset: Any  # what the evaluations during training see (they feed the pruner)
    model_init: Callable[..., Any]
    # When set, a trial that completes is evaluated once more on it, and that is its value.
    final_eval_dataset: Any = None
    # The study's metrics (hpo.data.study_metric_functions): every evaluation computes them,
    # the search-time ones on a subset and the final one alike.
    compute_metrics: Callable[[Any], Any] | None = None
    preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None
    # The task's collator (masked-lm, seq2seq-lm), or None for the trainer's default; the
    # study's model_init sets a trial's data.* params on it.
    data_collator: Any = None
    # What model_init built (each model and its first parameter), held weakly: see
    # `trial_memory_alive`.
    built: list[weakref.ref[Any]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.model_init = _tracked(self.model_init, self.built)

    def trial_memory_alive(self) -> bool:
        """Whether a model built for an earlier trial (or its weights) is still in memory.

        Reference counting frees a finished trial's model, parameters and optimizer state the
        moment the trial's Trainer goes; only a reference cycle (a traceback kept somewhere, a
        hook) keeps them until a collection. The worker collects only then: a full collection
        costs milliseconds per trial even over a frozen heap, for nothing in the usual case.
        """
        return any(ref() is not None for ref in self.built)


def _tracked(model_init: Callable[..., Any], built: list[weakref.ref[Any]]) -> Callable[..., Any]:
    """`model_init` that appends a weak reference to every model it returns, and to the
    model's first parameter, to `built`.

    The parameter too: an optimizer caught in a cycle keeps the weights (and its state)
    alive after the module itself is gone. `functools.wraps` keeps the signature the
    trainer inspects (model_init() or model_init(trial)).
    """

    @functools.wraps(model_init)
    def build(*args: Any, **kwargs: Any) -> Any:
        model = model_init(*args, **kwargs)
        built[:] = [ref for ref in built if ref() is not None]  # drop the trials before
        built.append(weakref.ref(model))
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        if first is not None:
            built.append(weakref.ref(first))
        return model

    return build


def prepare(spec: StudySpec) -> TrialContext:
    """Load the datasets (tokenized once per study, cached on disk) and build `model_init`.

    Unless the study sets data.max_eval_samples, evaluations during training use a fixed
    subset of SEARCH_EVAL_SAMPLES eval rows, and a completed trial's value comes from one
    evaluation on the whole eval set (`final_eval_dataset`).
    """
    from hpo.data import load_datasets, study_collator, study_metric_functions, study_model_init

    train_dataset, eval_dataset = load_datasets(spec)
    search_eval, final_eval = search_eval_datasets(spec, eval_dataset)
    metrics = study_metric_functions(spec)
    collator = study_collator(spec)
    return TrialContext(
        spec=spec,
        train_dataset=train_dataset,
        eval_dataset=search_eval,
        model_init=study_model_init(spec, collator),
        final_eval_dataset=final_eval,
        compute_metrics=metrics.compute_metrics,
        preprocess_logits_for_metrics=metrics.preprocess_logits_for_metrics,
        data_collator=collator,
    )


def search_eval_datasets(spec: StudySpec, eval_dataset: Any) -> tuple[Any, Any]:
    """(the eval set of evaluations during training, the final one or None)."""
    from hpo.data.cache import eval_subset
    from hpo.study.defaults import SEARCH_EVAL_SAMPLES

    if eval_dataset is None or spec.data.max_eval_samples is not None:
        return eval_dataset, None
    rows = eval_subset(len(eval_dataset), SEARCH_EVAL_SAMPLES)
    if rows is None:  # the eval set is small already
        return eval_dataset, None
    import torch.utils.data

    return torch.utils.data.Subset(eval_dataset, rows.tolist()), eval_dataset


def freeze_setup_objects() -> None:
    """Exclude everything alive now from the garbage collector's scans.

    Call it once per worker process, after the imports and `prepare`: torch, transformers,
    optuna and the datasets are millions of objects that live as long as the process. The
    worker runs `gc.collect()` after every trial so that the last trial's model is gone before
    the next one is built; without this, each of those collections scans all of them again
    (a few hundred ms a trial). Garbage of the setup is collected first, so nothing freed
    later is kept by the freeze; trial objects are created after it and collected as before.
    """
    gc.collect()
    gc.freeze()


# errno values of a disk that cannot take a checkpoint: full, over quota, read-only. Those stop
# the whole run (every trial would fail the same way) instead of failing trial after trial.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def disk_error_message(error: OSError) -> str:
    """What to do about a checkpoint the disk refused (the error names the path)."""
    if error.errno == errno.EROFS:
        return f"{error}; training.output_dir must be writable: move it to a writable disk"
    return f"{error}; free space on that disk or move training.output_dir to one with room"


def check_output_dir(spec: StudySpec) -> None:
    """Refuse to start when the study's output folder cannot be written (read-only, a file):
    before the storage is created, and in one line instead of a failure in every trial."""
    path = Path(spec.output_dir).expanduser()
    # Probe the nearest folder that exists rather than create the output folder: a run that
    # then stops (an unreachable storage) must leave nothing behind.
    existing = next(p for p in (path, *path.parents) if p.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise HpoError(
            f"training.output_dir {str(path)!r} cannot be written ({reason}); point it at a "
            "writable folder"
        ) from None


def training_arguments(spec: StudySpec, output_dir: str | os.PathLike[str]) -> Any:
    """The `TrainingArguments` every trial starts from (the trainer puts the params on a copy).

    On top of the study's `training` section:
    - the objective is the metric the trainer reports and keeps the best checkpoint for;
    - checkpoints are written at every evaluation (right after its report, so that a trial
      pruned there writes none), so a trial that dies is resumed from its last reported
      evaluation, or from the one before if it died between the report and the save (the
      Optuna worker also cancels the last one of a trial retention would delete at once:
      hpo/backends/optuna/unkept_checkpoint.py);
    - the progress bar is off: N workers writing bars into one terminal is noise.
    """
    from trainer import TrainingArguments

    values: dict[str, Any] = dict(spec.training)
    metric = spec.objective.metrics[0]
    values["output_dir"] = str(output_dir)
    values["metric_for_best_model"] = metric
    values["greater_is_better"] = spec.objective.directions[0] == "maximize"
    values.setdefault("disable_tqdm", True)
    values.setdefault("report_to", "none")
    eval_strategy = values.get("eval_strategy", "no")
    if eval_strategy in ("steps", "epoch"):
        values["save_strategy"] = eval_strategy
        if eval_strategy == "steps" and values.get("eval_steps"):
            values["save_steps"] = values["eval_steps"]
    # The trainer's rotation never deletes the best checkpoint, so one slot keeps best + newest.
    values.setdefault("save_total_limit", 1)
    return TrainingArguments(**values)


def train_trial(
    ctx: TrialContext,
    trial: Any,
    *,
    output_dir: str | os.PathLike[str],
    resume_from_checkpoint: str | None = None,
    callbacks: Iterable[Any] = (),
    interrupted: Callable[[], bool] | None = None,
) -> Any:
    """Train one trial and return the trainer's `TrainOutput`.

    `trial` is an optuna Trial (its params already suggested) or a Ray Tune config dict; the
    trainer applies the params to a copy of the args, passes the trial to `model_init` and
    reports the objective at every evaluation (and raises optuna.TrialPruned when told to).
    With a `final_eval_dataset`, the returned metrics are those of the whole eval set, unless
    `interrupted()` says the trial stopped short.
    """
    from trainer import PrinterCallback, ProgressCallback, Trainer

    trial = with_training_params(ctx.spec, trial)
    trainer = Trainer(
        model_init=ctx.model_init,
        args=training_arguments(ctx.spec, output_dir),
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        compute_metrics=ctx.compute_metrics,
        preprocess_logits_for_metrics=ctx.preprocess_logits_for_metrics,
        data_collator=ctx.data_collator,
        callbacks=list(callbacks),
    )
    # No log rows from trials either: the storage and the live view report them.
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # the printer disable_tqdm=True gives instead
    output = trainer.train(resume_from_checkpoint=resume_from_checkpoint, trial=trial)
    # Reached only by a trial that was not pruned (a pruned one raised in train()); one that
    # was interrupted is re-queued, and resumes, so it has no final value yet.
    interrupted = interrupted or (lambda: False)
    if ctx.final_eval_dataset is not None and trainer.args.eval_strategy != "no":
        if not interrupted():
            output.metrics.update(trainer.evaluate(ctx.final_eval_dataset))
    return output


def with_training_params(spec: StudySpec, trial: Any) -> Any:
    """The trial as the trainer must see it: under a Python space its params are what the
    space function returns for the suggested ones (`hpo.search.python_space`); otherwise the
    trial itself."""
    if spec.space_function is None:
        return trial
    from hpo.search.python_space import config_training_params, training_params

    if isinstance(trial, Mapping):  # a Ray config, or a rank's copy of the suggested params
        return config_training_params(spec.space_function, trial)
    from hpo.search.returned_trial import ReturnedParamsTrial

    return ReturnedParamsTrial(trial, training_params(spec.space_function, trial.params))


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """`metrics[name]`, accepting the name with or without the trainer's `eval_` prefix."""
    for key in (name, eval_metric_key(name), name.removeprefix(EVAL_PREFIX)):
        if key in metrics and metrics[key] is not None:
            return float(metrics[key])
    raise HpoError(
        f"objective.metric {name!r} is not among the trainer's metrics "
        f"({', '.join(sorted(metrics)) or 'none'}); use one of them in the study file, "
        "or check that training evaluates (training.eval_strategy)"
    )


def objective_values(spec: StudySpec, metrics: Mapping[str, Any]) -> float | list[float]:
    """The objective value (one float) or values (a list, multi-objective) from `metrics`."""
    values = [metric_value(metrics, name) for name in spec.objective.metrics]
    for name, value in zip(spec.objective.metrics, values, strict=True):
        if not math.isfinite(value):
            raise HpoError(f"objective.metric {name!r} is {value} at the end of the trial")
    return values if spec.objective.is_multi else values[0]


def json_safe_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as plain JSON values (storage attrs are JSON): numpy/torch scalars unwrapped,
    NaN and infinities as strings."""
    safe: dict[str, Any] = {}
    for key, value in metrics.items():
        value = getattr(value, "item", lambda v=value: v)()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        elif not isinstance(value, (int, float, str, bool, type(None))):
            value = str(value)
        safe[str(key)] = value
    return safe
