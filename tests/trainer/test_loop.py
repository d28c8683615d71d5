"""The inner loop: accumulation, logging, evaluation, callbacks, NaN guard, data shapes."""

import math
import os

import pytest
import torch
from helpers.tiny_models import SEQ, Regression, RegressionData, TokenDataset, gpt2, quiet_args

from trainer import Trainer, TrainerCallback
from trainer.trainer import NonFiniteLossError


def _one_step_over_the_whole_dataset(tmp_path, dataset, batch, accumulation):
    """One optimizer step of SGD lr=1 over all `batch * accumulation` rows of the dataset: the
    parameters after it reveal the accumulated gradient. Also returns the training loss and the
    micro-batches the model was given (recorded by a forward pre-hook)."""
    assert len(dataset) == batch * accumulation  # so that the one step sees every row once
    model = gpt2(dropout=0.0, seed=0)
    seen = []

    def record(module, args, kwargs):
        seen.append({"input_ids": kwargs["input_ids"], "labels": kwargs["labels"]})

    model.register_forward_pre_hook(record, with_kwargs=True)
    args = quiet_args(
        tmp_path,
        max_steps=1,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
    )
    output = Trainer(model=model, args=args, train_dataset=dataset).train()
    return [p.detach().clone() for p in model.parameters()], output.training_loss, seen


def test_accumulation_normalises_over_all_tokens_of_the_step(tmp_path):
    # Uneven padding: a mean of micro-batch means would weigh short rows more.
    dataset = TokenDataset(rows=8, pad_every=1)
    one_batch, loss_one, _ = _one_step_over_the_whole_dataset(tmp_path / "a", dataset, 8, 1)
    accumulated, loss_acc, groups = _one_step_over_the_whole_dataset(tmp_path / "b", dataset, 2, 4)
    assert len(groups) == 4 and all(len(g["input_ids"]) == 2 for g in groups)
    assert loss_acc == pytest.approx(loss_one, rel=1e-5)
    for a, b in zip(one_batch, accumulated, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # and it is the model's own mean over the predicted tokens of the whole batch (the causal
    # shift leaves each row's first label without a target: it is not counted)
    model = gpt2(dropout=0.0, seed=0)
    whole = {key: torch.cat([g[key] for g in groups]) for key in ("input_ids", "labels")}
    assert loss_one == pytest.approx(model(**whole).loss.item(), rel=1e-6)
    # while the weights of a mean of micro-batch means differ from the token weights here
    counts = torch.tensor([g["labels"][:, 1:].ne(-100).sum().item() for g in groups])
    assert len(set(counts.tolist())) > 1


def test_short_last_group_and_plain_module(tmp_path):
    # 10 rows, batch 4 -> 3 micro-batches per epoch; accumulation 2 -> 2 steps (the second short)
    args = quiet_args(
        tmp_path,
        num_train_epochs=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=0.05,
        lr_scheduler_type="constant",
    )
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData(rows=10))
    output = trainer.train()
    assert output.global_step == 4 and trainer.state.max_steps == 4
    steps = [row["step"] for row in trainer.state.log_history if "loss" in row]
    assert steps == [1, 2, 3, 4]
    assert trainer.state.epoch == 2.0


def test_metrics_logging_and_evaluation(tmp_path):
    args = quiet_args(
        tmp_path,
        max_steps=6,
        per_device_train_batch_size=4,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=4,
        learning_rate=0.05,
    )
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(seed=1),
    )
    output = trainer.train()
    for key in (
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
        "eval_loss",
    ):
        assert key in output.metrics
    history = trainer.state.log_history
    assert [r["step"] for r in history if "loss" in r] == [2, 4, 6]
    # evaluated at step 4 and once more at the end (6 is not an eval step)
    assert [r["step"] for r in history if "eval_loss" in r] == [4, 6]
    assert history[-1]["train_loss"] == output.training_loss
    losses = [r["loss"] for r in history if "loss" in r]
    assert output.training_loss == pytest.approx(sum(losses) / 3, rel=1e-4)


def test_callbacks_can_stop_and_request_evaluation(tmp_path):
    class Steer(TrainerCallback):
        def __init__(self):
            self.events = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.events.append("begin")

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                control.should_evaluate = True
            if state.global_step == 3:
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.events.append(("eval", state.global_step, "eval_loss" in metrics))

        def on_train_end(self, args, state, control, **kwargs):
            self.events.append("end")

    steer = Steer()
    args = quiet_args(tmp_path, max_steps=50, per_device_train_batch_size=4, eval_strategy="no")
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(),
        callbacks=[steer],
    )
    output = trainer.train()
    assert output.global_step == 3
    assert steer.events == ["begin", ("eval", 2, True), "end"]


def test_a_callback_can_end_the_epoch(tmp_path):
    # 16 rows, batch 4: 4 steps per epoch; the callback ends every epoch after its 2nd step
    class HalfEpochs(TrainerCallback):
        def __init__(self):
            self.events = []
            self.steps_in_epoch = 0

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.steps_in_epoch = 0
            self.events.append(("begin", state.global_step))

        def on_step_end(self, args, state, control, **kwargs):
            self.steps_in_epoch += 1
            if self.steps_in_epoch == 2:
                control.should_epoch_stop = True

        def on_epoch_end(self, args, state, control, **kwargs):
            self.events.append(("end", state.global_step))

    half = HalfEpochs()
    args = quiet_args(
        tmp_path, num_train_epochs=3, per_device_train_batch_size=4, learning_rate=0.05
    )
    trainer = Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(rows=16), callbacks=[half]
    )
    output = trainer.train()
    # the next epoch starts after a stopped one, and training ends after the last
    assert half.events == [
        ("begin", 0),
        ("end", 2),
        ("begin", 2),
        ("end", 4),
        ("begin", 4),
        ("end", 6),
    ]
    assert output.global_step == 6 and trainer.state.max_steps == 12
    assert trainer.state.epoch_index == 3 and trainer.state.steps_in_epoch == 0


def test_nan_loss_stops_with_the_step(tmp_path):
    class NanAt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)
            self.calls = 0

        def forward(self, x, y):
            self.calls += 1
            loss = torch.nn.functional.mse_loss(self.linear(x).squeeze(-1), y)
            return {"loss": loss * float("nan") if self.calls == 3 else loss}

    model = NanAt()
    args = quiet_args(tmp_path, max_steps=10, per_device_train_batch_size=4)
    trainer = Trainer(model=model, args=args, train_dataset=RegressionData())
    before = None

    class Remember(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            nonlocal before
            before = model.linear.weight.detach().clone()

    trainer.add_callback(Remember())
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        trainer.train()
    assert torch.isfinite(model.linear.weight).all()
    torch.testing.assert_close(model.linear.weight, before)  # the NaN step was never applied


def test_iterable_dataset_needs_max_steps_and_trains(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            data = RegressionData(rows=12)
            return (data[i] for i in range(len(data)))

    with pytest.raises(ValueError, match="max_steps"):
        Trainer(model=Regression(), args=quiet_args(tmp_path), train_dataset=Stream())
    args = quiet_args(tmp_path, max_steps=7, per_device_train_batch_size=4)
    trainer = Trainer(model=Regression(), args=args, train_dataset=Stream())
    assert trainer.train().global_step == 7  # 3 batches per pass: the stream is restarted


def test_getitems_dataset_is_indexed_in_one_call(tmp_path):
    class Columnar(torch.utils.data.Dataset):
        calls = 0

        def __init__(self):
            self.data = RegressionData(rows=16)

        def __len__(self):
            return 16

        def __getitem__(self, index):
            raise AssertionError("per-sample access")

        def __getitems__(self, indices):
            Columnar.calls += 1
            return {"x": self.data.x[indices], "y": self.data.y[indices]}

    trainer = Trainer(
        model=Regression(),
        args=quiet_args(tmp_path, max_steps=4, per_device_train_batch_size=4),
        train_dataset=Columnar(),
    )
    trainer.train()
    assert Columnar.calls == 4


def test_construction_errors(tmp_path):
    with pytest.raises(ValueError, match="eval_dataset"):
        Trainer(
            model=Regression(),
            args=quiet_args(tmp_path, eval_strategy="steps", eval_steps=2),
            train_dataset=RegressionData(),
        )
    with pytest.raises(ValueError, match="exactly one of model= or model_init="):
        Trainer(args=quiet_args(tmp_path), train_dataset=RegressionData())


def test_gpt2_learns_with_remove_unused_columns(tmp_path):
    data = TokenDataset(rows=32)

    # an extra column the model does not take is dropped before forward
    class Extra(torch.utils.data.Dataset):
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return {**data[i], "row_id": i}

    args = quiet_args(
        tmp_path, max_steps=30, per_device_train_batch_size=8, learning_rate=3e-3, logging_steps=10
    )
    trainer = Trainer(model=gpt2(dropout=0.0, seed=0), args=args, train_dataset=Extra())
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert losses[-1] < losses[0] < math.log(64) + 0.5
    assert SEQ == 16


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path, precision):
    args = quiet_args(
        tmp_path,
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        **{precision: True},
    )
    trainer = Trainer(
        model=gpt2(dropout=0.0, seed=0), args=args, train_dataset=TokenDataset(rows=16)
    )
    output = trainer.train()
    assert math.isfinite(output.training_loss) and output.global_step == 4


def test_epoch_strategies(tmp_path):
    args = quiet_args(
        tmp_path,
        num_train_epochs=3,
        per_device_train_batch_size=8,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        learning_rate=0.05,
    )
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(rows=16),
        eval_dataset=RegressionData(seed=1),
    )
    trainer.train()
    evals = [(r["step"], r["epoch"]) for r in trainer.state.log_history if "eval_loss" in r]
    assert evals == [(2, 1.0), (4, 2.0), (6, 3.0)]
    assert [r["step"] for r in trainer.state.log_history if "loss" in r] == [2, 4, 6]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]


def test_example_script_helpers(tmp_path, capsys):
    args = quiet_args(tmp_path, max_steps=2, per_device_train_batch_size=8)
    trainer = Trainer(
        model=gpt2(dropout=0.0, seed=0), args=args, train_dataset=TokenDataset(rows=16)
    )
    metrics = trainer.train().metrics
    trainer.save_model()
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    from transformers import GPT2LMHeadModel

    reloaded = GPT2LMHeadModel.from_pretrained(str(tmp_path))
    assert torch.equal(reloaded.transformer.wte.weight, trainer.model.transformer.wte.weight)
    assert "train_loss" in capsys.readouterr().out
    assert (tmp_path / "train_results.json").exists() and (tmp_path / "trainer_state.json").exists()


def test_train_collects_garbage_only_when_it_released_something(tmp_path):
    # A full gc.collect() scans the heap of torch and transformers: the first train() of a
    # Trainer given a model has nothing to release, so it must not pay for one.
    import gc

    full_collections = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            full_collections.append(info)

    trainer = Trainer(
        model=gpt2(seed=0),
        args=quiet_args(tmp_path, max_steps=2, per_device_train_batch_size=4),
        train_dataset=TokenDataset(rows=8),
    )
    was_enabled = gc.isenabled()
    gc.disable()  # only explicit collections now: the count is the trainer's own
    gc.callbacks.append(count)
    try:
        trainer.train()
        first = len(full_collections)
        trainer.train()  # this one drops the first run's optimizer and scheduler
        second = len(full_collections) - first
    finally:
        gc.callbacks.remove(count)
        if was_enabled:
            gc.enable()
    assert first == 0
    assert second >= 1
