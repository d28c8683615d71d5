"""The `metrics`, `compute_metrics` and `preprocess_logits_for_metrics` keys, and whether the
objective names a metric the study's evaluations will report.

`metrics: [accuracy, f1]` names built-in metrics (hpo.data.metrics.METRICS_BY_TASK says which
each task can compute); `compute_metrics: package.module:function` names the user's own
function instead (Transformers' signature: one EvalPrediction -> a dict of floats), optionally
with `preprocess_logits_for_metrics: package.module:function` ((logits, labels) -> predictions).
The two ways exclude each other: hpo's functions and a user's preprocessing would each expect
the other's predictions.

The objective check: `objective.metric` (and `training.metric_for_best_model`) must be among
what an evaluation reports: `eval_loss`, `eval_<name>` for each name in `metrics`, and the
loop's runtime figures. With a user's `compute_metrics` the names are known only once it runs:
any name passes here, and the first evaluation of a trial checks it (hpo.data.metrics.
check_objective_names) with the names the function returned.
"""

from __future__ import annotations

import inspect
from typing import Any

from hpo.attrs import EVAL_PREFIX, eval_metric_key
from hpo.errors import HpoError
from hpo.spec import TASKS, MetricsSpec, ObjectiveSpec
from hpo.study.guarded_calls import no_bytecode, one_line
from hpo.study.problems import did_you_mean
from hpo.study.reader import Reader


def read_metrics(reader: Reader) -> MetricsSpec:
    """The three keys, each checked: names the task can compute, functions that import and
    take Transformers' arguments."""
    from hpo.data.metrics import METRICS_BY_TASK, task_metrics

    raw = reader.raw
    task = _declared_task(reader)
    names: list[str] = []
    if raw.get("metrics") is not None:
        names = reader.text_list(
            raw["metrics"], "metrics", "a list of metric names, e.g. [accuracy, f1]"
        )
    allowed = task_metrics(task) if task else ()
    for index, name in enumerate(names):
        if task is None or name in allowed:
            continue
        elsewhere = [t for t, metrics in METRICS_BY_TASK.items() if name in metrics]
        hint = f" ({name} is a metric of task {', '.join(elsewhere)})" if elsewhere else ""
        reader.problems.found(
            f"metrics[{index}]",
            name,
            f"one of {', '.join(allowed)} for task {task}"
            if allowed
            else f"no metric: task {task} reports eval_loss only",
            hint or did_you_mean(name, allowed),
        )
    compute = _function(reader, "compute_metrics", 1, "compute_metrics(eval_prediction)")
    preprocess = _function(
        reader,
        "preprocess_logits_for_metrics",
        2,
        "preprocess_logits_for_metrics(logits, labels)",
    )
    if names and raw.get("compute_metrics") is not None:
        reader.problems.add(
            "metrics",
            "given with compute_metrics; expected one of them: built-in metrics, or your "
            "function computing all of them",
        )
    if raw.get("preprocess_logits_for_metrics") is not None and raw.get("compute_metrics") is None:
        reader.problems.add(
            "preprocess_logits_for_metrics",
            "given without compute_metrics; expected it only with your own compute_metrics "
            "(the built-in metrics reduce the logits themselves)",
        )
    return MetricsSpec(
        names=tuple(dict.fromkeys(names)),
        compute_metrics=compute,
        preprocess_logits_for_metrics=preprocess,
    )


def check_objective_metrics(
    reader: Reader, objective: ObjectiveSpec, metrics: MetricsSpec, training: dict[str, Any]
) -> None:
    """Each objective metric (and training.metric_for_best_model) is one an evaluation of this
    task with these metrics reports; otherwise a problem listing what it reports."""
    from hpo.data.metrics import TRAIN_METRICS, produced_metrics, task_metrics

    task = _declared_task(reader)
    if task is None or metrics.compute_metrics is not None:
        return  # the model section reports the task; a user's function is checked at run time
    produced = produced_metrics(metrics.names)
    wanted = [
        ("objective.metric" if len(objective.metrics) == 1 else f"objective.metric[{i}]", m, i)
        for i, m in enumerate(objective.metrics)
    ]
    best_model_metric = training.get("metric_for_best_model")
    if isinstance(best_model_metric, str):
        wanted.append(("training.metric_for_best_model", best_model_metric, 0))
    for path, metric, position in wanted:
        if eval_metric_key(metric) in produced or (position > 0 and metric in TRAIN_METRICS):
            continue
        bare = eval_metric_key(metric).removeprefix(EVAL_PREFIX)
        computable = task_metrics(task)
        if bare in computable:
            fix = f"add {bare} to metrics (metrics: [{', '.join((*metrics.names, bare))}])"
        elif computable:
            fix = f"task {task} can also compute {', '.join(computable)} when named in metrics"
        else:
            fix = "or name your own compute_metrics: package.module:function"
        named = f"metrics [{', '.join(metrics.names)}]" if metrics.names else "no metrics"
        reader.problems.add(
            path,
            f"{metric!r} is not reported by an evaluation of task {task} with {named}; "
            f"it reports {', '.join(produced)}; {fix}",
        )


def _declared_task(reader: Reader) -> str | None:
    """model.task as written (default causal-lm), or None when it is not a task."""
    model = reader.raw.get("model")
    task = model.get("task", "causal-lm") if isinstance(model, dict) else "causal-lm"
    return task if task in TASKS else None


def _function(reader: Reader, key: str, n_args: int, signature: str) -> str | None:
    """A 'package.module:function' that imports and can be called with `n_args` arguments."""
    value = reader.raw.get(key)
    if value is None:
        return None
    ref = reader.text(value, key, "'package.module:function'")
    if ref is None:
        return None
    from hpo.data.factory import load_factory  # puts the current directory on sys.path itself

    try:
        with no_bytecode():
            function = load_factory(ref, key)
    except HpoError as error:
        if str(error) not in reader.problems.lines:
            reader.problems.lines.append(str(error))
        return ref
    except Exception as error:  # the user's module raised while importing
        reader.problems.add(key, f"importing {ref!r} raised {one_line(error)}")
        return ref
    try:
        inspect.signature(function).bind(*([None] * n_args))
    except TypeError:
        reader.problems.add(
            key,
            f"{ref!r} takes {inspect.signature(function)}; expected Transformers' {signature}",
        )
    except ValueError:  # no signature to read (a builtin): it is judged when called
        pass
    return ref
