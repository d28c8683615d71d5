"""Every field of the installed transformers.TrainingArguments is either a field of ours (with
Transformers' default) or refused with a reason at any value but its default; the process
properties read as Transformers' do on one CPU process; fields are assignable."""

import dataclasses

import pytest

from trainer import TrainingArguments, TrainingArgumentsError
from trainer.args import FIELD_NAMES, OPTIMIZER_NAMES
from trainer.refused_args import REFUSED

# Fields whose default deliberately differs from Transformers' (none today).
OWN_DEFAULTS: dict[str, str] = {}


def _transformers_fields():
    import transformers

    return {f.name: f for f in dataclasses.fields(transformers.TrainingArguments) if f.init}


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def test_every_transformers_field_is_honoured_or_refused():
    theirs = _transformers_fields()
    ours = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    unaccounted = sorted(name for name in theirs if name not in FIELD_NAMES and name not in REFUSED)
    assert unaccounted == []
    assert not set(REFUSED) & FIELD_NAMES  # a field is one or the other
    for name in theirs:
        default = _default(theirs[name])
        if name in REFUSED:
            assert REFUSED[name][0] == default, name
        elif name not in OWN_DEFAULTS:
            assert _default(ours[name]) == default, name


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_field_names_its_reason_and_reads_as_the_default(name):
    default, reason = REFUSED[name]
    assert getattr(TrainingArguments(), name) == default
    TrainingArguments(**{name: default})  # the default is accepted
    other = "x" if not isinstance(default, bool) else not default
    with pytest.raises(TrainingArgumentsError) as error:
        TrainingArguments(**{name: other})
    assert str(error.value).endswith(
        f"{name}={other!r} is not supported ({reason}); leave it at {default!r}"
    )
    args = TrainingArguments()
    with pytest.raises(TrainingArgumentsError, match=name):
        setattr(args, name, other)


def test_optimizer_names_are_transformers_optimizer_names():
    from transformers.training_args import OptimizerNames

    assert set(OPTIMIZER_NAMES) == {o.value for o in OptimizerNames}


def test_process_properties_match_transformers_on_one_cpu_process(tmp_path):
    import transformers

    theirs = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    ours = TrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    for name in (
        "device",
        "n_gpu",
        "world_size",
        "local_rank",
        "process_index",
        "local_process_index",
        "should_save",
        "should_log",
        "train_batch_size",
        "eval_batch_size",
    ):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.parallel_mode == theirs.parallel_mode.value


def test_fields_assign_like_transformers_and_are_checked_again_by_train(tmp_path):
    import torch
    from helpers.tiny_models import Regression, RegressionData

    from trainer import Trainer

    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=True, save_strategy="no")
    args.max_steps = 3
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    assert trainer.train().global_step == 3
    trainer.args.max_steps = 5  # the same object: a rerun trains to the new value
    assert trainer.train().global_step == 5
    trainer.args = dataclasses.replace(args, max_steps=2)  # a new object: the next run's args
    assert trainer.train().global_step == 2
    trainer.args.learning_rate = -1.0
    with pytest.raises(TrainingArgumentsError, match="learning_rate=-1.0"):
        trainer.train()
    assert isinstance(args.device, torch.device)
