"""Transformers' callback contract, run through transformers.Trainer and ours side by side:
the default callback list (classes and order), removing and popping the defaults by either
library's class, the duplicate-callback warning, and the sequence of events a run fires."""

import logging
import warnings

import pytest
import torch
import transformers
from helpers.tiny_models import Regression, RegressionData

import trainer

LIBRARIES = {"transformers": transformers, "ours": trainer}
EVENTS = (
    "on_init_end",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_step_begin",
    "on_pre_optimizer_step",
    "on_optimizer_step",
    "on_substep_end",
    "on_step_end",
    "on_evaluate",
    "on_predict",
    "on_save",
    "on_log",
    "on_prediction_step",
    "on_push_begin",
)


class Recorder(transformers.TrainerCallback):
    """Records every event it receives, with the step it came at."""

    def __init__(self):
        self.events = []


def _recording(event):
    def hook(self, args, state, control, **kwargs):
        self.events.append((event, state.global_step))

    return hook


for _event in EVENTS:
    setattr(Recorder, _event, _recording(_event))


class Marker(transformers.TrainerCallback):
    pass


def build(library, tmp_path, callbacks=None, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path / library.__name__),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    kwargs.update(overrides)
    return library.Trainer(
        model=Regression(),
        args=library.TrainingArguments(**kwargs),
        train_dataset=RegressionData(rows=32),
        eval_dataset=RegressionData(rows=24, seed=1),
        callbacks=callbacks,
    )


def names(trainer_):
    return [type(callback).__name__ for callback in trainer_.callback_handler.callbacks]


@pytest.mark.parametrize(
    "overrides",
    [{"disable_tqdm": True}, {"disable_tqdm": False}, {"disable_tqdm": True, "report_to": []}],
)
def test_the_default_callbacks_are_transformers_in_its_order(tmp_path, overrides):
    lists = {
        name: names(build(library, tmp_path, callbacks=[Marker], **overrides))
        for name, library in LIBRARIES.items()
    }
    assert lists["ours"] == lists["transformers"]
    expected_last = "PrinterCallback" if overrides["disable_tqdm"] else "ProgressCallback"
    assert lists["ours"][0] == "DefaultFlowCallback" and lists["ours"][-1] == expected_last


@pytest.mark.parametrize("source", ["transformers", "ours"])
def test_the_defaults_pop_and_remove_by_either_librarys_class(tmp_path, source):
    library = LIBRARIES[source]
    ours = build(trainer, tmp_path)
    printer = ours.pop_callback(library.PrinterCallback)
    assert type(printer).__name__ == "PrinterCallback"
    assert ours.pop_callback(library.PrinterCallback) is None  # popped: nothing left to find
    ours.remove_callback(library.DefaultFlowCallback)
    assert names(ours) == []
    progress = build(trainer, tmp_path, disable_tqdm=False).pop_callback(library.ProgressCallback)
    assert isinstance(progress, transformers.ProgressCallback)


def test_adding_one_class_twice_warns_as_transformers_does(tmp_path):
    messages = {}
    # Both warn through Transformers' logger, so its verbosity decides; an earlier test in the
    # same process may have lowered it (the full suite did, once).
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_warning()
    try:
        for name, library in LIBRARIES.items():
            records = []
            handler = logging.Handler()
            handler.emit = records.append
            target = logging.getLogger("transformers.trainer_callback")
            target.addHandler(handler)
            try:
                built = build(library, tmp_path, callbacks=[Marker, Marker])
            finally:
                target.removeHandler(handler)
            assert names(built).count("Marker") == 2  # added all the same
            warned = [r.getMessage() for r in records if r.levelno == logging.WARNING]
            # The sentence, not the list after it (Transformers' lacks a space: "currentlist").
            messages[name] = [m.split(" The current")[0] for m in warned if "already one" in m]
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    assert len(messages["ours"]) == 1
    assert messages["ours"] == messages["transformers"]
    assert "Marker" in messages["ours"][0]


def run_and_record(library, tmp_path, **overrides):
    recorder = Recorder()
    built = build(library, tmp_path, callbacks=[recorder], **overrides)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built.train()
        built.evaluate()
        built.predict(RegressionData(rows=16, seed=2))
    return recorder.events


@pytest.mark.parametrize(
    "overrides",
    [
        # accumulation (on_substep_end), logs, step evaluations off the save grid, the last step
        dict(
            gradient_accumulation_steps=2,
            num_train_epochs=2,
            logging_steps=2,
            eval_strategy="steps",
            eval_steps=3,
            save_steps=4,
        ),
        # epoch strategies, and max_steps stopping inside an epoch (its on_epoch_end still fires)
        dict(
            max_steps=6,
            logging_strategy="epoch",
            eval_strategy="epoch",
            save_strategy="epoch",
        ),
    ],
)
def test_a_run_fires_transformers_events_in_its_order(tmp_path, overrides):
    ours = run_and_record(trainer, tmp_path, **overrides)
    theirs = run_and_record(transformers, tmp_path, **overrides)
    assert ours == theirs
    fired = {event for event, _ in ours}
    assert {"on_pre_optimizer_step", "on_optimizer_step", "on_prediction_step"} <= fired


def test_the_handler_fires_on_push_begin(tmp_path):
    recorder = Recorder()
    built = build(trainer, tmp_path, callbacks=[recorder])
    built.callback_handler.on_push_begin(built.args, built.state, built.control)
    assert recorder.events[-1] == ("on_push_begin", 0)
