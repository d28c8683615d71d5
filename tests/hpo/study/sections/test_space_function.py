"""hpo.study.sections.space_function: `space: package.module:function`, dry-run at validation."""

from __future__ import annotations

import itertools
import textwrap

import pytest
from helpers.study_files import problems_of, write_study

from hpo.study import load

_names = itertools.count()


def space_module(tmp_path, body: str) -> str:
    """A module beside the study (the current directory) defining `hp_space`; returns its
    reference. Each gets a new name: an imported module stays in sys.modules."""
    name = f"user_space_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return f"{name}:hp_space"


GOOD = """
    def hp_space(trial):
        optim = trial.suggest_categorical("optim", ["adamw_torch", "sgd"])
        params = {
            "learning_rate": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "optim": optim,
            "model.n_layer": trial.suggest_int("model.n_layer", 1, 2),
        }
        if optim == "adamw_torch":
            params["adam_beta2"] = trial.suggest_float("adam_beta2", 0.95, 0.999)
        return params
"""


def test_a_python_space_loads(tmp_path):
    ref = space_module(tmp_path, GOOD)
    spec = load(write_study(tmp_path, {"space": ref}))
    assert spec.space_function == ref
    assert spec.space == ()
    assert spec.is_define_by_run


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "def hp_space(trial):\n    return [trial.suggest_float('learning_rate', 0.1, 0.2)]\n",
            "space: {ref} returned list; expected a dict of {{TrainingArguments field or "
            "model.<key>: value}}",
        ),
        (
            "def hp_space(trial):\n    raise RuntimeError('no GPU here')\n",
            "space: {ref}(trial) raised RuntimeError: no GPU here on a dry-run trial",
        ),
        (
            "def hp_space(trial):\n"
            "    return {'learnin_rate': trial.suggest_float('lr', 1e-4, 1e-2)}\n",
            "space ({ref}) returned 'learnin_rate': neither a TrainingArguments field nor "
            "model.<config attribute> (did you mean 'learning_rate'?)",
        ),
        (
            "def hp_space(trial):\n    return {'output_dir': 'elsewhere'}\n",
            "space ({ref}) returned 'output_dir': decides which code runs",
        ),
        (
            "def hp_space(trial):\n"
            "    return {'lr_scheduler_type': trial.suggest_categorical('s', ['linear', 'bogus'])}\n",
            "space ({ref}): returned {{'lr_scheduler_type': 'bogus'}} on a dry-run trial; "
            "TrainingArguments rejects it: lr_scheduler_type=",
        ),
        (
            "def hp_space(trial):\n    return {'model.n_head': trial.suggest_int('h', 2, 3)}\n",
            "space ({ref}): returned model params {{'n_head': 3}} on a dry-run trial; gpt2 "
            "rejects them: ValueError: `embed_dim` must be divisible by num_heads",
        ),
        ("def hp_space(trial):\n    return {}\n", "space: {ref} returned no params"),
        ("hp_space = 3\n", "space: '{ref}': 'hp_space' in '{module}' is not callable"),
        (
            "import no_such_module_here\n",
            "space: '{ref}': module '{module}' could not be imported (No module named "
            "'no_such_module_here')",
        ),
        (
            "raise ValueError('bad config')\n",
            "space: importing '{ref}' raised ValueError: bad config",
        ),
    ],
)
def test_dry_run_problems_name_the_function(tmp_path, body, expected):
    ref = space_module(tmp_path, body)
    problems = problems_of(tmp_path, {"space": ref})
    expected = expected.format(ref=ref, module=ref.partition(":")[0])
    assert any(p.startswith(expected) for p in problems), problems


def test_a_branch_seen_only_on_some_draws_is_checked(tmp_path):
    # The bad value appears only when the first suggestion is "sgd": the dry run's several
    # trials reach it.
    ref = space_module(
        tmp_path,
        """
        def hp_space(trial):
            if trial.suggest_categorical("optim", ["adamw_torch", "sgd"]) == "sgd":
                return {"optim": "sgd", "warmup_ratio": -1.0}
            return {"optim": "adamw_torch"}
        """,
    )
    problems = problems_of(tmp_path, {"space": ref})
    warmup = [p for p in problems if "'warmup_ratio': -1.0" in p]
    assert len(warmup) == 1, problems  # once, though several draws took that branch


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("user_space.hp_space", "space: 'user_space.hp_space' is not a factory reference"),
        ("no_such_space_module:hp_space", "module 'no_such_space_module' could not be imported"),
        ("json:no_such_function", "module 'json' has no function 'no_such_function'"),
    ],
)
def test_bad_references(tmp_path, ref, expected):
    problems = problems_of(tmp_path, {"space": ref})
    assert any(expected in p for p in problems), problems


def test_grid_is_refused_for_a_python_space(tmp_path):
    ref = space_module(tmp_path, GOOD)
    problems = problems_of(tmp_path, {"space": ref, "sampler": {"name": "grid"}})
    assert any(
        p.startswith("sampler.name: grid needs a fixed list") and f"a Python space ({ref})" in p
        for p in problems
    ), problems


def test_the_readme_example_loads(tmp_path):
    # helpers.spaces.scheduler_space is docs/STUDY_FILE.md's hp_space (lr_scheduler_kwargs per scheduler).
    spec = load(write_study(tmp_path, {"space": "helpers.spaces:scheduler_space"}))
    assert spec.space_function == "helpers.spaces:scheduler_space"
