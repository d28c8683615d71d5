"""auto_find_batch_size with a model that runs out of memory above 4 rows per batch."""

import ast
import pathlib

import pytest
import torch
from helpers.tiny_models import Regression, RegressionData

import trainer
from trainer import Trainer, TrainingArguments
from trainer.batch_size import find_executable_batch_size, smaller_batch

LIMIT = 4


class OutOfMemoryAbove(Regression):
    raised = 0

    def forward(self, x, y):
        if x.shape[0] > LIMIT:
            OutOfMemoryAbove.raised += 1
            raise torch.OutOfMemoryError(f"simulated: {x.shape[0]} rows do not fit")
        return super().forward(x, y)


def _args(tmp_path, **kwargs):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=16,
        disable_tqdm=True,
        save_strategy="no",
        learning_rate=0.05,
        logging_steps=1,
        auto_find_batch_size=True,
    )
    base.update(kwargs)
    return TrainingArguments(**base)


def test_smaller_batch_keeps_the_effective_batch_exact():
    assert smaller_batch(16, 16) == 8
    assert smaller_batch(12, 12) == 6
    assert smaller_batch(6, 12) == 3
    assert smaller_batch(5, 10) == 2
    assert smaller_batch(1, 8) is None


def test_oom_retries_from_scratch_with_more_accumulation(tmp_path):
    built = []

    def model_init():
        model = OutOfMemoryAbove()
        built.append(model)
        return model

    OutOfMemoryAbove.raised = 0
    searched = Trainer(
        model_init=model_init, args=_args(tmp_path / "a"), train_dataset=RegressionData(rows=64)
    )
    output = searched.train()
    assert OutOfMemoryAbove.raised == 2  # 16 and 8 failed, 4 fit
    assert len(built) == 3  # a fresh model for every attempt
    assert searched.state.train_batch_size == 4 and searched.state.gradient_accumulation_steps == 4
    assert output.global_step == 6

    # identical to a run configured with 4 x 4 from the start: the failed attempts left nothing
    direct = Trainer(
        model_init=model_init,
        args=_args(
            tmp_path / "b",
            per_device_train_batch_size=4,
            gradient_accumulation_steps=4,
            auto_find_batch_size=False,
        ),
        train_dataset=RegressionData(rows=64),
    )
    direct.train()
    assert torch.equal(searched.model.linear.weight, direct.model.linear.weight)
    losses = [[r["loss"] for r in t.state.log_history if "loss" in r] for t in (searched, direct)]
    assert losses[0] == losses[1]


def test_oom_retry_without_model_init_restarts_from_the_initial_weights(tmp_path):
    torch.manual_seed(0)
    model = OutOfMemoryAbove()
    initial = model.state_dict()
    initial = {k: v.clone() for k, v in initial.items()}
    trainer = Trainer(
        model=model, args=_args(tmp_path / "a"), train_dataset=RegressionData(rows=64)
    )
    trainer.train()

    reference = OutOfMemoryAbove()
    reference.load_state_dict(initial)
    direct = Trainer(
        model=reference,
        args=_args(
            tmp_path / "b",
            per_device_train_batch_size=4,
            gradient_accumulation_steps=4,
            auto_find_batch_size=False,
        ),
        train_dataset=RegressionData(rows=64),
    )
    direct.train()
    assert torch.equal(model.linear.weight, reference.linear.weight)


def test_resume_uses_the_batch_size_found(tmp_path):
    args = _args(tmp_path, save_strategy="steps", save_steps=3)
    first = Trainer(
        model_init=lambda: OutOfMemoryAbove(), args=args, train_dataset=RegressionData(rows=64)
    )
    first.train()
    OutOfMemoryAbove.raised = 0
    resumed = Trainer(
        model_init=lambda: OutOfMemoryAbove(), args=args, train_dataset=RegressionData(rows=64)
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert OutOfMemoryAbove.raised == 0  # went straight to 4 x 4
    assert resumed.state.train_batch_size == 4 and resumed.state.global_step == 6


def test_without_auto_find_the_oom_propagates(tmp_path):
    trainer = Trainer(
        model_init=lambda: OutOfMemoryAbove(),
        args=_args(tmp_path, auto_find_batch_size=False),
        train_dataset=RegressionData(rows=64),
    )
    with pytest.raises(torch.OutOfMemoryError):
        trainer.train()


def test_find_executable_batch_size_takes_any_callable():
    calls = []
    released = []

    def attempt(batch_size, accumulation_steps):
        calls.append((batch_size, accumulation_steps))
        if batch_size > 3:
            raise torch.OutOfMemoryError("simulated")
        return "done"

    result = find_executable_batch_size(attempt, 12, 1, before_retry=lambda: released.append(1))
    assert result == "done"
    assert calls == [(12, 1), (6, 2), (3, 4)]  # the effective batch stays 12
    assert len(released) == 2


def test_no_module_of_the_package_imports_the_trainer_module():
    # trainer/trainer.py uses the other modules; none of them may use it back (__init__ aside,
    # and seq2seq.py, whose Seq2SeqTrainer subclasses Trainer and which trainer.py never imports).
    package = pathlib.Path(trainer.__file__).parent
    importers = []
    for path in sorted(package.glob("*.py")):
        if path.name in ("__init__.py", "seq2seq.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if "trainer.trainer" in names:
                importers.append(path.name)
    assert importers == []
