import dataclasses
import pickle
import subprocess
import sys

import pytest

from trainer import TrainingArguments
from trainer.args import SCHEDULER_NAMES, ArgumentProblem, TrainingArgumentsError


def test_defaults_match_transformers():
    import transformers

    ours = TrainingArguments(output_dir="out")
    theirs = transformers.TrainingArguments(output_dir="out", use_cpu=True)
    compared = [
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "max_grad_norm",
        "warmup_steps",
        "logging_steps",
        "logging_first_step",
        "save_steps",
        "save_total_limit",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "seed",
        "data_seed",
        "bf16",
        "fp16",
        "dataloader_num_workers",
        "auto_find_batch_size",
        "torch_compile",
        "eval_steps",
        "dataloader_drop_last",
        "remove_unused_columns",
        "push_to_hub",
        "hub_model_id",
        "save_only_model",
    ]
    for name in compared:
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in (
        "eval_strategy",
        "save_strategy",
        "lr_scheduler_type",
        "logging_strategy",
        "optim",
    ):
        assert getattr(ours, name) == getattr(theirs, name).value, name


def test_scheduler_names_are_transformers_names():
    from transformers.trainer_utils import SchedulerType

    assert set(SCHEDULER_NAMES) == {member.value for member in SchedulerType}


def test_unknown_field_is_a_value_error_with_suggestion():
    with pytest.raises(
        ValueError, match=r"'learning_rte' is not a field \(did you mean 'learning_rate'\?\)"
    ):
        TrainingArguments(learning_rte=0.1)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"max_steps": -3}, ["max_steps=-3"]),
        ({"max_steps": 0}, ["max_steps=0"]),
        ({"per_device_train_batch_size": 0}, ["per_device_train_batch_size=0"]),
        ({"lr_scheduler_type": "cosin"}, ["lr_scheduler_type='cosin'", "cosine_with_restarts"]),
        ({"learning_rate": -1.0}, ["learning_rate=-1.0"]),
        ({"eval_strategy": "sometimes"}, ["eval_strategy='sometimes'", "no, steps, epoch"]),
        ({"bf16": True, "fp16": True}, ["bf16=True and fp16=True"]),
        (
            {"load_best_model_at_end": True, "eval_strategy": "epoch", "save_strategy": "steps"},
            ["load_best_model_at_end=True", "eval_strategy='epoch'", "save_strategy='steps'"],
        ),
        (
            {
                "load_best_model_at_end": True,
                "eval_strategy": "steps",
                "eval_steps": 10,
                "save_steps": 15,
            },
            ["save_steps=15", "eval_steps=10"],
        ),
        ({"save_total_limit": 0}, ["save_total_limit=0"]),
        ({"save_strategy": "best"}, ["save_strategy='best'", "eval_strategy"]),
        ({"gradient_accumulation_steps": 1.5}, ["gradient_accumulation_steps=1.5"]),
    ],
)
def test_invalid_values_name_field_and_value(kwargs, names):
    with pytest.raises(ValueError) as error:
        TrainingArguments(**kwargs)
    for name in names:
        assert name in str(error.value)


def test_several_problems_are_reported_together():
    with pytest.raises(ValueError) as error:
        TrainingArguments(max_steps=-2, learning_rate=-1.0)
    assert "max_steps=-2" in str(error.value) and "learning_rate=-1.0" in str(error.value)


def test_problems_are_structured_and_the_message_lists_them():
    with pytest.raises(TrainingArgumentsError) as error:
        TrainingArguments(max_steps=-2, learning_rate=-1.0, bf16=True, fp16=True)
    problems = error.value.problems
    assert [(p.field, p.value) for p in problems] == [
        ("max_steps", -2),
        ("learning_rate", -1.0),
        ("bf16", True),
    ]
    assert problems[1] == ArgumentProblem("learning_rate", -1.0, "a number >= 0")
    assert str(problems[1]) == "learning_rate=-1.0: a number >= 0"
    assert str(problems[2]) == "bf16=True and fp16=True: choose at most one mixed precision"
    assert str(error.value) == "Invalid TrainingArguments:\n  - " + "\n  - ".join(
        map(str, problems)
    )
    # Ray and multiprocessing pickle a worker's exception: it comes back whole
    copy = pickle.loads(pickle.dumps(error.value))
    assert str(copy) == str(error.value) and copy.problems == problems


def test_unknown_fields_are_structured_too():
    with pytest.raises(TrainingArgumentsError) as error:
        TrainingArguments(learning_rte=0.1)
    (problem,) = error.value.problems
    assert (problem.field, problem.value) == ("learning_rte", 0.1)
    assert str(error.value) == (
        "Unknown TrainingArguments field(s): 'learning_rte' is not a field "
        "(did you mean 'learning_rate'?)"
    )


def test_assignable_validate_and_replace_revalidates():
    # Transformers scripts assign fields after creation (args.max_steps = 50); the values are
    # checked again by validate(), which train() calls.
    args = TrainingArguments(output_dir="o", eval_strategy="steps", eval_steps=5)
    args.learning_rate = 1.0
    assert args.learning_rate == 1.0
    args.learning_rate = -1.0
    with pytest.raises(ValueError, match="learning_rate=-1.0"):
        args.validate()
    args.learning_rate = 1.0
    with pytest.raises(ValueError, match="did you mean 'max_steps'"):
        args.max_stepz = 3  # a typo is refused at once, not silently stored
    assert dataclasses.replace(args, learning_rate=0.1).learning_rate == 0.1
    with pytest.raises(ValueError, match="learning_rate=-0.1"):
        dataclasses.replace(args, learning_rate=-0.1)


def test_derived_defaults():
    args = TrainingArguments(
        eval_strategy="steps", logging_steps=7, load_best_model_at_end=True, save_steps=14
    )
    assert args.eval_steps == 7
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    assert TrainingArguments(metric_for_best_model="accuracy").greater_is_better is True
    assert TrainingArguments(warmup_steps=0.1).get_warmup_steps(95) == 10
    assert TrainingArguments(warmup_ratio=0.5).get_warmup_steps(10) == 5
    assert TrainingArguments(warmup_steps=3).get_warmup_steps(10) == 3
    assert TrainingArguments(lr_scheduler_kwargs='{"num_cycles": 2}').lr_scheduler_kwargs == {
        "num_cycles": 2
    }


def test_hub_token_is_masked():
    args = TrainingArguments(hub_token="secret-token")
    assert "secret-token" not in repr(args)
    assert "secret-token" not in args.to_json_string()


def test_importing_args_does_not_import_torch():
    code = "import sys, trainer.args, trainer; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_transformers_argument_set_builds_both_classes(tmp_path):
    import transformers

    kwargs = dict(
        output_dir=str(tmp_path),
        max_steps=10,
        num_train_epochs=1,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.99,
        adam_epsilon=1e-8,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        max_grad_norm=1.0,
        logging_steps=5,
        logging_first_step=True,
        eval_strategy="steps",
        eval_steps=5,
        save_strategy="steps",
        save_steps=5,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        seed=1,
        data_seed=2,
        bf16=False,
        fp16=False,
        dataloader_num_workers=0,
        auto_find_batch_size=False,
        torch_compile=False,
        disable_tqdm=True,
        report_to="none",
        run_name="r",
        remove_unused_columns=True,
        dataloader_drop_last=False,
        save_only_model=False,
        full_determinism=False,
    )
    theirs = transformers.TrainingArguments(use_cpu=True, **kwargs)
    ours = TrainingArguments(use_cpu=True, **kwargs)
    for name in kwargs:
        value = getattr(theirs, name)
        assert getattr(ours, name) == getattr(value, "value", value) or name == "report_to", name
