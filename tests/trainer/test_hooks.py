"""Subclass hooks: an override of a transformers.Trainer method our loop never calls is
refused when the trainer is built (Transformers would call it; we would silently not); the
hooks our loop calls are compared with Transformers in tests/one_import/test_training_scripts.py."""

import pytest
from helpers.tiny_models import Regression, RegressionData, TokenDataset, gpt2, quiet_args

from trainer import Trainer


@pytest.mark.parametrize(
    "method", ["_inner_training_loop", "get_batch_samples", "compute_loss_context_manager"]
)
def test_an_override_the_loop_never_calls_is_refused(tmp_path, method):
    import transformers

    assert hasattr(transformers.Trainer, method)  # a real Transformers hook
    subclass = type("Custom", (Trainer,), {method: lambda self, *a, **k: None})
    with pytest.raises(
        TypeError, match=rf"Custom overrides transformers.Trainer method\(s\) \['{method}'\]"
    ):
        subclass(model=Regression(), args=quiet_args(tmp_path), train_dataset=RegressionData())


def test_helper_methods_of_a_subclass_are_not_refused(tmp_path):
    class WithHelpers(Trainer):
        def my_helper(self):  # not a Transformers method
            return 1

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    WithHelpers(model=Regression(), args=quiet_args(tmp_path), train_dataset=RegressionData())


def test_a_train_loader_override_is_iterated_every_epoch_and_resumed(tmp_path):
    import torch

    batches = []

    class OwnLoader(Trainer):
        def get_train_dataloader(self):
            # No shuffle: the loader's own order, which the loop keeps.
            return torch.utils.data.DataLoader(self.train_dataset, batch_size=4, shuffle=False)

        def training_step(self, model, inputs, num_items_in_batch=None):
            batches.append(inputs["input_ids"][:, 0].tolist())
            return super().training_step(model, inputs, num_items_in_batch)

    args = quiet_args(
        tmp_path,
        num_train_epochs=2,
        per_device_train_batch_size=4,
        save_strategy="steps",
        save_steps=3,
    )
    dataset = TokenDataset(rows=12)
    OwnLoader(model=gpt2(), args=args, train_dataset=dataset).train()
    first_ids = dataset.ids[:, 0].tolist()
    assert batches == [first_ids[i : i + 4] for i in (0, 4, 8)] * 2
    batches.clear()
    resumed = OwnLoader(model=gpt2(), args=args, train_dataset=dataset)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert batches == [first_ids[i : i + 4] for i in (0, 4, 8)]  # the second epoch only
    assert resumed.state.global_step == 6
