"""What a resume checks and restores besides weights and data position (trainer/resume_checks.py),
and label smoothing on a multi-label model: each snippet runs through Transformers' classes and
ours and the outcomes are compared."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import torch
import transformers
from helpers.tiny_models import Regression, RegressionData
from transformers.trainer_callback import ExportableState

import trainer

LIBRARIES = pytest.mark.parametrize("lib", [transformers, trainer], ids=["transformers", "ours"])


@pytest.fixture(autouse=True)
def _quiet():
    before = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()
    yield
    transformers.utils.logging.set_verbosity(before)


def args_of(lib, output_dir, **kwargs):
    values = dict(
        output_dir=str(output_dir), max_steps=4, save_strategy="steps", save_steps=2,
        logging_steps=1, learning_rate=1e-2, report_to="none", disable_tqdm=True,
    )  # fmt: skip
    values.update(kwargs)
    return lib.TrainingArguments(**values)


class Collected(logging.Handler):
    """Records the warnings of a logger (Transformers' loggers do not propagate to the root)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> Collected:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)


@LIBRARIES
def test_a_missing_resume_path_is_transformers_error(lib, tmp_path):
    missing = tmp_path / "checkpoint-7"
    trainer_ = lib.Trainer(
        model=Regression(), args=args_of(lib, tmp_path), train_dataset=RegressionData()
    )
    with pytest.raises(ValueError) as error:
        trainer_.train(resume_from_checkpoint=str(missing))
    assert str(error.value) == f"Can't find a valid checkpoint at {missing}"


@LIBRARIES
def test_arguments_that_differ_from_the_checkpoints_are_warned_about(lib, tmp_path):
    lib.Trainer(
        model=Regression(), args=args_of(lib, tmp_path), train_dataset=RegressionData()
    ).train()
    changed = args_of(lib, tmp_path, logging_steps=3, per_device_train_batch_size=4)
    resumed = lib.Trainer(model=Regression(), args=changed, train_dataset=RegressionData())
    # Both on Transformers' logger, so Transformers' verbosity governs ours as well.
    with Collected("transformers") as collected:
        transformers.utils.logging.set_verbosity_warning()
        resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    [warning] = [m for m in collected.messages if "do not match" in m]
    assert warning.startswith(
        "Warning: The following arguments do not match the ones in the `trainer_state.json` "
        "within the checkpoint directory: "
    )
    assert "\n\tlogging_steps: 3 (from args) != 1 (from trainer_state.json)" in warning
    assert (
        "\n\tper_device_train_batch_size: 4 (from args) != 8 (from trainer_state.json)" in warning
    )
    assert "save_steps" not in warning


def counter_class(lib):
    class StepCounter(lib.TrainerCallback, ExportableState):
        """Counts optimizer steps; its count is its state (Transformers' ExportableState)."""

        def __init__(self, start: int = 0) -> None:
            self.start, self.steps = start, start

        def on_step_end(self, args, state, control, **kwargs):
            self.steps += 1

        def state(self) -> dict:
            return {"args": {"start": self.start}, "attributes": {"steps": self.steps}}

    return StepCounter


@LIBRARIES
@pytest.mark.parametrize("restore", [True, False])
def test_stateful_callbacks_are_restored_from_a_checkpoint(lib, restore, tmp_path):
    StepCounter = counter_class(lib)
    lib.Trainer(
        model=Regression(),
        args=args_of(lib, tmp_path),
        train_dataset=RegressionData(),
        callbacks=[StepCounter()],
    ).train()
    saved = json.loads((tmp_path / "checkpoint-2" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["StepCounter"] == {
        "args": {"start": 0},
        "attributes": {"steps": 2},
    }
    assert "TrainerControl" in saved["stateful_callbacks"]
    args = args_of(lib, tmp_path, restore_callback_states_from_checkpoint=restore)
    resumed = lib.Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), callbacks=[StepCounter()]
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    [counter] = [c for c in resumed.callback_handler.callbacks if isinstance(c, StepCounter)]
    # Restored: 2 steps counted before the checkpoint, 2 after; else the 2 after only.
    assert counter.steps == (4 if restore else 2)


@LIBRARIES
def test_load_callback_state_restores_the_saved_control_flags(lib, tmp_path):
    """Transformers' `_load_callback_state()` (which its own tests call) rebuilds the control
    flags of a checkpoint: at the last step's save, should_training_stop was set."""
    lib.Trainer(
        model=Regression(), args=args_of(lib, tmp_path, max_steps=2), train_dataset=RegressionData()
    ).train()
    args = args_of(lib, tmp_path, max_steps=2, restore_callback_states_from_checkpoint=True)
    resumed = lib.Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    assert not resumed.control.should_training_stop
    resumed.state = transformers.TrainerState.load_from_json(
        str(tmp_path / "checkpoint-2" / "trainer_state.json")
    )
    resumed._load_callback_state()
    assert resumed.control.should_training_stop


class MultiLabel(torch.nn.Module):
    """A plain module with a config that says multi-label, as Transformers' heads have."""

    def __init__(self) -> None:
        super().__init__()
        self.config = transformers.PretrainedConfig(problem_type="multi_label_classification")
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x, labels=None):
        logits = self.linear(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        return {"loss": loss, "logits": logits}


class MultiLabelData(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        return {"x": torch.randn(4, generator=generator), "labels": torch.tensor([1.0, 0.0, 1.0])}


@LIBRARIES
def test_label_smoothing_is_disabled_with_a_warning_for_a_multi_label_model(lib, tmp_path):
    args = args_of(lib, tmp_path, label_smoothing_factor=0.1, max_steps=1, save_strategy="no")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = lib.Trainer(model=MultiLabel(), args=args, train_dataset=MultiLabelData())
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    # Warned once, when the Trainer is built; training then runs without smoothing.
    assert (
        messages.count(
            "Label smoothing is not compatible with multi-label classification. "
            "Disabling label smoothing for this training run."
        )
        == 1
    )
    assert run.label_smoother is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.train()
    assert not [w for w in caught if "Label smoothing" in str(w.message)]
    assert run.label_smoother is None
