"""Every public method of transformers.Trainer exists on ours, and the helpers scripts call
return what Transformers' return for the same trainer (one snippet through both)."""

import pytest
import torch
import transformers
from helpers.tiny_models import Regression, RegressionData, TokenDataset, gpt2, quiet_args

import trainer


def public_methods(cls):
    return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}


def test_ours_has_every_public_method_of_transformers_trainer():
    missing = public_methods(transformers.Trainer) - public_methods(trainer.Trainer)
    assert not missing, f"missing: {sorted(missing)}"


class Normed(torch.nn.Module):
    """Weights that decay and ones that do not (a bias, a LayerNorm, a frozen weight)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 6)
        self.norm = torch.nn.LayerNorm(6)
        self.frozen = torch.nn.Linear(6, 2, bias=False)
        self.frozen.weight.requires_grad_(False)

    def forward(self, x, y=None):
        return {"logits": self.frozen(self.norm(self.linear(x)))}


def both(tmp_path, model_factory, **overrides):
    built = {}
    for library in (transformers, trainer):
        kwargs = dict(
            output_dir=str(tmp_path / library.__name__),
            report_to="none",
            use_cpu=True,
            learning_rate=0.01,
            warmup_steps=2,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=3,
        )
        kwargs.update(overrides)
        built[library.__name__] = library.Trainer(
            model=model_factory(), args=library.TrainingArguments(**kwargs)
        )
    return built["transformers"], built["trainer"]


def test_optimizer_helpers_match_transformers(tmp_path):
    theirs, ours = both(tmp_path, Normed)
    for built in (theirs, ours):
        with pytest.raises(ValueError, match="optimizer is None"):
            built.get_learning_rates()
        with pytest.raises(ValueError, match="optimizer is None"):
            built.get_optimizer_group()
        built.create_optimizer_and_scheduler(num_training_steps=10)
    assert ours.get_learning_rates() == theirs.get_learning_rates()
    assert ours.lr_scheduler.get_last_lr() == theirs.lr_scheduler.get_last_lr()
    shapes = [[tuple(p.shape) for p in params] for params in ours.get_optimizer_group()]
    assert shapes == [[tuple(p.shape) for p in params] for params in theirs.get_optimizer_group()]
    bias = ours.model.linear.bias
    assert any(p is bias for p in ours.get_optimizer_group(bias)["params"])
    assert ours.get_optimizer_group(bias)["weight_decay"] == 0.0
    trainable = [n for n, p in ours.model.named_parameters() if p.requires_grad]
    decayed_theirs = [n for n in theirs.get_decay_parameter_names(theirs.model) if n in trainable]
    assert ours.get_decay_parameter_names(ours.model) == decayed_theirs == ["linear.weight"]
    assert ours.get_num_trainable_parameters() == theirs.get_num_trainable_parameters() == 54


def test_data_and_process_helpers_match_transformers(tmp_path):
    theirs, ours = both(tmp_path, Regression, num_train_epochs=2)
    loader = torch.utils.data.DataLoader(RegressionData(rows=30), batch_size=4)
    for name, call in [
        ("num_examples", lambda t: t.num_examples(loader)),
        ("is_world_process_zero", lambda t: t.is_world_process_zero()),
        ("is_local_process_zero", lambda t: t.is_local_process_zero()),
        ("get_total_train_batch_size", lambda t: t.get_total_train_batch_size(t.args)),
        ("set_initial_training_values", lambda t: t.set_initial_training_values(t.args, loader)),
        ("parallel sizes", lambda t: (t.get_tp_size(), t.get_cp_size(), t.get_sp_size())),
    ]:
        assert call(ours) == call(theirs), name
    assert ours.set_initial_training_values(ours.args, loader) == (2, 3, 30, 60, 12, 8, 6)
    metrics = {"train_runtime": 3725.5, "eval_loss": 0.123456789, "total_flos": 3.2e9}
    # Transformers binds its metrics_format function as a method, so only the class-level call
    # works there; ours is a staticmethod and works both ways.
    expected = transformers.Trainer.metrics_format(metrics)
    assert trainer.Trainer.metrics_format(metrics) == ours.metrics_format(metrics) == expected


def test_model_helpers_match_transformers(tmp_path):
    theirs, ours = both(tmp_path, lambda: gpt2(seed=0))
    batch = {"input_ids": torch.ones(2, 16, dtype=torch.long)}
    assert ours.floating_point_ops(batch) == theirs.floating_point_ops(batch) > 0
    with ours.compute_loss_context_manager():
        assert not torch.is_autocast_enabled()  # full precision: nothing to cast

    def model_init(trial):
        return Regression(features=3 if trial is None else trial["features"])

    built = trainer.Trainer(model_init=model_init, args=quiet_args(tmp_path))
    assert built.call_model_init().linear.in_features == 3
    assert built.call_model_init({"features": 5}).linear.in_features == 5


def test_get_batch_samples_counts_the_loss_tokens_of_a_step(tmp_path):
    built = trainer.Trainer(model=gpt2(seed=0), args=quiet_args(tmp_path))
    loader = torch.utils.data.DataLoader(TokenDataset(rows=6), batch_size=2)
    batches, items = built.get_batch_samples(iter(loader), 2, torch.device("cpu"))
    labels = torch.cat([b["labels"][:, 1:] for b in batches])
    assert len(batches) == 2 and int(items) == int((labels != -100).sum())


def test_an_evaluation_loop_override_runs_in_evaluate_and_predict(tmp_path):
    seen = []

    class Counting(trainer.Trainer):
        def evaluation_loop(self, dataloader, description, *args, **kwargs):
            seen.append(description)
            return super().evaluation_loop(dataloader, description, *args, **kwargs)

    built = Counting(model=Regression(), args=quiet_args(tmp_path), eval_dataset=RegressionData())
    assert "eval_loss" in built.evaluate()
    built.predict(RegressionData(rows=8))
    assert seen == ["Evaluation", "Prediction"]
