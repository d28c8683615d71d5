"""Extending the arguments by subclassing, Seq2SeqTrainingArguments, and save_strategy='best':
each snippet runs through Transformers' classes and ours and the outcomes are compared."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass

import pytest
import transformers
from helpers.tiny_models import Regression, RegressionData

import trainer
from trainer import TrainingArgumentsError

LIBRARIES = pytest.mark.parametrize("lib", [transformers, trainer], ids=["transformers", "ours"])


@dataclass
class TheirArgs(transformers.TrainingArguments):  # module level: picklable
    my_field: float = 0.0
    my_name: str = "x"


@dataclass
class OurArgs(trainer.TrainingArguments):  # the same two lines, on ours
    my_field: float = 0.0
    my_name: str = "x"


def subclass_of(lib):
    return TheirArgs if lib is transformers else OurArgs


@LIBRARIES
def test_a_dataclass_subclass_adds_fields(lib, tmp_path):
    MyArgs = subclass_of(lib)
    args = MyArgs(str(tmp_path), my_field=1.0, learning_rate=1e-3, report_to="none")
    assert (args.my_field, args.my_name, args.learning_rate) == (1.0, "x", 1e-3)
    assert "my_field" in {f.name for f in dataclasses.fields(args)}
    changed = dataclasses.replace(args, my_field=2.0)
    assert type(changed) is MyArgs and changed.my_field == 2.0 and changed.learning_rate == 1e-3
    assert args.to_dict()["my_field"] == 1.0 and '"my_name": "x"' in args.to_json_string()
    copy = pickle.loads(pickle.dumps(args))
    assert (type(copy), copy.my_field) == (MyArgs, 1.0)
    args.my_field = 3.0  # assignable like any field
    assert args.my_field == 3.0


@LIBRARIES
def test_a_trainer_trains_with_subclassed_args_and_callbacks_read_the_new_field(lib, tmp_path):
    MyArgs = subclass_of(lib)
    seen = []

    class Reader(lib.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.append((type(args).__name__, args.my_field))

    args = MyArgs(
        str(tmp_path), my_field=0.5, max_steps=2, save_strategy="no", report_to="none",
        disable_tqdm=True,
    )  # fmt: skip
    model = Regression()
    lib.Trainer(
        model=model, args=args, train_dataset=RegressionData(), callbacks=[Reader()]
    ).train()
    assert seen == [(MyArgs.__name__, 0.5)]


def test_ours_keeps_its_checked_construction_in_a_subclass(tmp_path):
    MyArgs = subclass_of(trainer)
    # Transformers answers these with a bare TypeError (unknown keyword) or accepts them; ours
    # name the problem and the fix, as for TrainingArguments itself.
    with pytest.raises(TypeError):
        subclass_of(transformers)(str(tmp_path), my_feld=1.0)
    with pytest.raises(TrainingArgumentsError, match="did you mean 'my_field'"):
        MyArgs(str(tmp_path), my_feld=1.0)
    with pytest.raises(TrainingArgumentsError, match="local_rank=3 is not supported"):
        MyArgs(str(tmp_path), local_rank=3)
    with pytest.raises(TrainingArgumentsError, match="learning_rate=-1"):
        MyArgs(str(tmp_path), learning_rate=-1)
    args = MyArgs(str(tmp_path), local_rank=-1)  # a refused field at its default is accepted
    assert args.local_rank == -1
    with pytest.raises(TrainingArgumentsError, match="did you mean 'my_name'"):
        args.my_nme = "y"


def test_a_subclass_field_is_a_trial_param():
    from trainer.trial import plan_trial

    args = subclass_of(trainer)("out")
    plan = plan_trial(args, {"my_field": 0.25, "learning_rate": 0.1}, None, has_model=True)
    assert (plan.args.my_field, plan.args.learning_rate, type(plan.args)) == (
        0.25,
        0.1,
        type(args),
    )


@LIBRARIES
def test_save_strategy_best_needs_metric_for_best_model(lib, tmp_path):
    args = lib.TrainingArguments(
        str(tmp_path), save_strategy="best", eval_strategy="steps", eval_steps=1, report_to="none"
    )  # the arguments alone are accepted by both; the Trainer refuses them
    data = RegressionData()
    with pytest.raises(ValueError) as error:
        lib.Trainer(model=Regression(), args=args, train_dataset=data, eval_dataset=data)
    assert str(error.value) == (
        "`args.metric_for_best_model` must be provided when using 'best' save_strategy or if "
        "`args.load_best_model_at_end` is set to `True`."
    )
    args.metric_for_best_model = "loss"
    lib.Trainer(model=Regression(), args=args, train_dataset=data, eval_dataset=data)


def test_seq2seq_arguments_are_a_dataclass_subclass_with_transformers_fields_and_defaults():
    def new_fields(cls):
        base = {f.name for f in dataclasses.fields(cls.__mro__[1])}
        return {f.name: f.default for f in dataclasses.fields(cls) if f.name not in base}

    assert issubclass(trainer.Seq2SeqTrainingArguments, trainer.TrainingArguments)
    assert dataclasses.is_dataclass(trainer.Seq2SeqTrainingArguments)
    assert new_fields(trainer.Seq2SeqTrainingArguments) == new_fields(
        transformers.Seq2SeqTrainingArguments
    )


@LIBRARIES
def test_seq2seq_arguments_serialise_a_generation_config(lib, tmp_path):
    config = transformers.GenerationConfig(max_length=5, num_beams=2)
    args = lib.Seq2SeqTrainingArguments(
        str(tmp_path), generation_config=config, generation_max_length=7, report_to="none"
    )
    values = args.to_dict()
    assert values["generation_config"]["max_length"] == 5
    assert values["generation_max_length"] == 7
    assert '"num_beams": 2' in args.to_json_string()


def test_ours_refuses_sortish_sampler_and_bad_generation_values(tmp_path):
    with pytest.raises(TrainingArgumentsError, match="sortish_sampler=True is not supported"):
        trainer.Seq2SeqTrainingArguments(str(tmp_path), sortish_sampler=True)
    with pytest.raises(TrainingArgumentsError, match="generation_num_beams=0"):
        trainer.Seq2SeqTrainingArguments(str(tmp_path), generation_num_beams=0)
    with pytest.raises(TrainingArgumentsError, match="did you mean 'predict_with_generate'"):
        trainer.Seq2SeqTrainingArguments(str(tmp_path), predict_with_generat=True)


@LIBRARIES
def test_a_subclass_post_init_may_override_defaults_and_set_its_own_attributes(lib, tmp_path):
    @dataclass
    class ConfigWithDerivedValue(lib.TrainingArguments):  # as TRL's configs are written
        learning_rate: float = 2e-5
        max_length: int | None = 1024

        def __post_init__(self):
            super().__post_init__()
            self.max_tokens = None if self.max_length is None else 2 * self.max_length

    config = ConfigWithDerivedValue(str(tmp_path), max_length=8)
    assert (config.learning_rate, config.max_tokens) == (2e-5, 16)
    config.max_tokens = 4  # its own attribute, assignable again
    assert dataclasses.replace(config, max_length=3).max_tokens == 6


@LIBRARIES
def test_hf_argument_parser_reads_the_seq2seq_arguments(lib):
    # How Transformers' example scripts (run_summarization.py, run_translation.py) build them.
    (args,) = transformers.HfArgumentParser(lib.Seq2SeqTrainingArguments).parse_args_into_dataclasses(
        args=[
            "--output_dir", "out", "--learning_rate", "0.1", "--predict_with_generate",
            "--generation_max_length", "9", "--report_to", "none", "--eval_strategy", "steps",
            "--eval_steps", "3",
        ]
    )  # fmt: skip
    assert type(args) is lib.Seq2SeqTrainingArguments
    assert (args.learning_rate, args.predict_with_generate, args.generation_max_length) == (
        0.1,
        True,
        9,
    )
    assert (args.report_to, args.eval_steps, args.do_eval) == ([], 3, True)
