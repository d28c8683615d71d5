"""`space: package.module:function`: a Python space, checked by running it before any worker.

The function is called as `hyperparameter_search` calls `hp_space`: with an `optuna.Trial`,
returning {TrainingArguments field or model.<key>: value}. A dry run calls it on trials of a
throwaway in-memory study (a seeded random sampler, several draws so that more than one branch
of a define-by-run space is seen) and puts what it returns through the same checks as a
declared space: each name a training field or model attribute that may be searched, each set
of training values accepted by TrainingArguments, each model override accepted by the config.
"""

from __future__ import annotations

from typing import Any

from hpo.attrs import MODEL_PREFIX
from hpo.errors import HpoError
from hpo.study.guarded_calls import no_bytecode, one_line
from hpo.study.reader import Reader
from hpo.study.sections.model import BuiltModel, build_config, model_rejection
from hpo.study.sections.space import check_param_name
from hpo.study.sections.training import training_rejections

# Draws of the dry run: enough for a define-by-run function to show its branches, cheap
# (the function only suggests; a random sampler draws in microseconds).
DRY_RUN_TRIALS = 8


def read_space_function(reader: Reader) -> str | None:
    """The reference when `space:` is text, checked for shape only (nothing imported)."""
    from hpo.data.factory import split_factory_ref

    value = reader.raw.get("space")
    if not isinstance(value, str):
        return None
    try:
        split_factory_ref(value, "space")
    except HpoError as error:
        reader.problems.lines.append(
            f"{error} (or a mapping of params: {{learning_rate: {{type: float, ...}}}})"
        )
        return None
    return value


def check_space_function(
    reader: Reader,
    ref: str,
    training: dict[str, Any],
    built: BuiltModel,
    field_names: frozenset[str],
) -> None:
    """Import the function and dry-run it; each problem names the function."""
    points = _dry_run(reader, ref)
    if not points:
        return
    where = f"space ({ref})"
    names_before = len(reader.problems)
    for name in sorted({name for point in points for name in point}):
        check_param_name(reader, name, built, field_names, path=f"{where} returned {name!r}")
    if len(reader.problems) > names_before:
        return
    # One problem per rejected field (and one for the model): the draws differ in value only.
    reported: set[str] = set()
    for point in points:
        fields = {k: v for k, v in point.items() if not k.startswith(MODEL_PREFIX)}
        for field, message in training_rejections({**training, **fields}) if fields else ():
            if (field or message) not in reported:
                reported.add(field or message)
                reader.problems.add(
                    where,
                    f"returned {fields!r} on a dry-run trial; TrainingArguments rejects it: "
                    f"{message}",
                )
        model = {k[len(MODEL_PREFIX) :]: v for k, v in point.items() if k.startswith(MODEL_PREFIX)}
        if model and built.config is not None and "model" not in reported:
            try:
                rejection = model_rejection(
                    build_config(built.config.model_type, {**built.settings, **model}), built.task
                )
            except Exception as error:
                rejection = one_line(error)
            if rejection:
                reported.add("model")
                reader.problems.add(
                    where,
                    f"returned model params {model!r} on a dry-run trial; "
                    f"{built.config.model_type} rejects them: {rejection}",
                )


def _dry_run(reader: Reader, ref: str) -> list[dict[str, Any]]:
    """What the function returns on DRY_RUN_TRIALS trials; [] after recording a problem."""
    import optuna

    from hpo.search.python_space import load_space_function, returned_params

    try:
        with no_bytecode():
            function = load_space_function(ref)
    except HpoError as error:
        reader.problems.lines.append(str(error))
        return []
    except Exception as error:  # the user's module raised while importing
        reader.problems.add("space", f"importing {ref!r} raised {one_line(error)}")
        return []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    finally:
        optuna.logging.set_verbosity(verbosity)
    points = []
    for _ in range(DRY_RUN_TRIALS):
        trial = study.ask()
        try:
            points.append(returned_params(ref, function(trial)))
        except HpoError as error:
            reader.problems.lines.append(str(error))
            return []
        except Exception as error:
            reader.problems.add(
                "space",
                f"{ref}(trial) raised {one_line(error)} on a dry-run trial (params so far "
                f"{trial.params!r}); it must run on any optuna.Trial, as hp_space does",
            )
            return []
    if not any(points):
        reader.problems.add("space", f"{ref} returned no params; expected at least one")
        return []
    return points
