"""The methods Transformers users override in a `Trainer` subclass, with Transformers'
signatures, and the check that refuses an override the loop would never call.

The loop calls each of these through `self`, so a subclass's version runs: `compute_loss`,
`training_step`, `prediction_step`, `create_optimizer`, `create_scheduler`,
`get_train_dataloader`, `get_eval_dataloader`, `get_test_dataloader` (and `evaluate`, `log`,
defined on the Trainer). A subclass that overrides any other `transformers.Trainer` method
(`_inner_training_loop`, `evaluation_loop`, ...) is refused when it is constructed: the
override would otherwise be silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from trainer.data import EpochBatches, is_map_style, loader_for
from trainer.model_io import (
    accepts_loss_kwargs,
    autocast,
    extract_loss,
    loss_items,
    loss_shifts_labels,
    maybe_loss,
    model_inputs,
)
from trainer.optim import build_optimizer, build_scheduler

# Methods provided for scripts to call that the loop never calls through self: a subclass's
# override of one of them would be silently ignored, so refused_overrides refuses it.
NOT_CALLED_BY_THE_LOOP = frozenset(
    {
        "autocast_smart_context_manager",
        "call_model_init",
        "compute_loss_context_manager",
        "create_accelerator_and_postprocess",
        "create_optimizer_and_scheduler",
        "end",
        "floating_point_ops",
        "get_batch_samples",
        "get_cp_size",
        "get_decay_parameter_names",
        "get_learning_rates",
        "get_num_trainable_parameters",
        "get_optimizer_group",
        "get_resumed_dataloader",
        "get_sp_size",
        "get_total_train_batch_size",
        "get_tp_size",
        "init_hf_repo",
        "is_local_process_zero",
        "is_world_process_zero",
        "metrics_format",
        "num_examples",
        "set_initial_training_values",
        "store_flos",
    }
)


class TrainerHooks:
    """Default implementations of the overridable steps (see the module doc)."""

    # Set by the Trainer's constructor; declared here for the methods below.
    args: Any
    model: Any
    optimizer: Any
    lr_scheduler: Any
    train_dataset: Any
    data_collator: Any
    compute_loss_func: Any
    label_smoother: Any
    # Transformers' switch for a compute_loss that already normalises over the whole
    # accumulated batch (True) or returns a per-batch mean (False); None: decided as Transformers
    # does (the model took num_items_in_batch, or compute_loss_func is set).
    loss_is_scaled_for_ga: bool | None = None
    # The loss items of the optimizer step being accumulated, set by the loop.
    _items_in_step: Any = None
    _scaler: Any = None

    # --- training ---
    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        """The model's loss (or compute_loss_func's, or the label-smoothed one); with
        num_items_in_batch, summed over the batch's tokens and divided by it."""
        labels = None
        if (self.label_smoother is not None or self.compute_loss_func is not None) and (
            "labels" in inputs
        ):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
        if num_items_in_batch is not None and accepts_loss_kwargs(model):
            inputs = {**inputs, "num_items_in_batch": num_items_in_batch}
        outputs = model(**inputs)
        if self.compute_loss_func is not None:
            loss = self.compute_loss_func(outputs, labels, num_items_in_batch=num_items_in_batch)
        elif labels is not None:
            loss = self.label_smoother(
                outputs,
                labels,
                shift_labels=loss_shifts_labels(model),
                num_items_in_batch=num_items_in_batch,
            )
        else:
            loss = extract_loss(outputs)
        return (loss, outputs) if return_outputs else loss

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns its detached share of the step's loss.

        A loss that is not already normalised over the step is weighted by this micro-batch's
        share of the step's loss items (tokens, or rows), not divided by the accumulation count.
        """
        model.train()
        inputs = self._prepare_inputs(inputs)
        # The share is counted before compute_loss, which may pop the labels it counts.
        share = None
        if not self._loss_is_scaled(model, num_items_in_batch):
            share = self._share_of_step(model, inputs)
        with autocast(self.args, self.args.device):
            loss = self.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        if share is not None:
            loss = loss * share
        (self._scaler.scale(loss) if self._scaler is not None else loss).backward()
        return loss.detach()

    def _prepare_inputs(self, inputs: Any) -> dict[str, Any]:
        model = self.model
        return model_inputs(inputs, self.args.device, model, self.args.remove_unused_columns)

    def _loss_is_scaled(self, model: torch.nn.Module, num_items_in_batch: Any) -> bool:
        if self.loss_is_scaled_for_ga is not None:
            return self.loss_is_scaled_for_ga
        if num_items_in_batch is None:
            return False
        return (
            accepts_loss_kwargs(model)
            or self.compute_loss_func is not None
            or self.label_smoother is not None
        )

    def _share_of_step(self, model: torch.nn.Module, inputs: Mapping[str, Any]) -> Any:
        count = loss_items(inputs, loss_shifts_labels(model))
        total = self._items_in_step
        if total is None:  # called outside the loop: an equal share of the accumulation
            return 1.0 / self.args.gradient_accumulation_steps
        if isinstance(count, torch.Tensor) and isinstance(total, torch.Tensor):
            return count.to(total.device) / total
        return count / total

    # --- evaluation ---
    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, Any, Any]:
        """(loss, logits, labels) of one evaluation batch, without gradients."""
        inputs, labels = self._evaluation_inputs(model, inputs)
        has_labels = labels is not None
        if ignore_keys is None:
            ignore_keys = list(
                getattr(getattr(model, "config", None), "keys_to_ignore_at_inference", [])
            )
        with torch.no_grad(), autocast(self.args, self.args.device):
            if has_labels:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
            else:
                outputs = model(**inputs)
                loss = maybe_loss(outputs)  # models like ours that take no `labels` may return one
        if loss is not None:
            loss = loss.detach().float().mean()
        if prediction_loss_only:
            return loss, None, None
        return loss, _logits(outputs, ignore_keys, first_is_loss=has_labels), labels

    def _evaluation_inputs(
        self, model: torch.nn.Module, inputs: dict[str, Any], names: list[str] | None = None
    ) -> tuple[dict[str, Any], Any]:
        """The prologue of an evaluation batch (prediction_step's, Seq2SeqTrainer's too): the
        inputs on the device, and their labels (the `names` columns, by default the model's
        label names: one detached tensor or a tuple), None unless all of them are there.

        Read before compute_loss or generate(): an override may pop them (`labels =
        inputs.pop("labels")`, the pattern Transformers documents), as may label smoothing."""
        inputs = self._prepare_inputs(inputs)
        names = label_names(model, self.args) if names is None else names
        if not names or any(inputs.get(name) is None for name in names):
            return inputs, None
        values = tuple(inputs[name].detach() for name in names)
        return inputs, values[0] if len(values) == 1 else values

    # --- optimizer and schedule ---
    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """self.optimizer, built for the model (AdamW over decayed / undecayed groups, or the
        `optim` Transformers' factory builds) unless one was given."""
        if self.optimizer is None:
            model = model if model is not None else self.model
            self.optimizer = build_optimizer(model, self.args, self.get_optimizer_cls_and_kwargs)
        return self.optimizer

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> Any:
        """self.lr_scheduler: `transformers.get_scheduler` for lr_scheduler_type, unless given."""
        if self.lr_scheduler is None:
            optimizer = optimizer if optimizer is not None else self.optimizer
            self.lr_scheduler = build_scheduler(optimizer, self.args, num_training_steps)
        return self.lr_scheduler

    @staticmethod
    def get_optimizer_cls_and_kwargs(args: Any, model: Any = None) -> tuple[Any, dict[str, Any]]:
        """Transformers' own optimizer factory (every `optim` name Transformers knows)."""
        from transformers import Trainer as TransformersTrainer

        return TransformersTrainer.get_optimizer_cls_and_kwargs(args, model)

    # --- data ---
    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        """The first epoch's loader. The loop itself builds one per epoch (a seeded,
        resumable order) unless a subclass overrides this method; then it iterates what the
        override returns, every epoch, and a resume skips the seen batches by reading them."""
        if self.train_dataset is None:
            raise ValueError("get_train_dataloader() needs train_dataset= in the Trainer")
        args = self.args
        sampler = None
        if is_map_style(self.train_dataset):
            seed = args.data_seed if args.data_seed is not None else args.seed
            sampler = EpochBatches(
                len(self.train_dataset),
                args.per_device_train_batch_size,
                seed,
                0,
                drop_last=args.dataloader_drop_last,
            )
        return loader_for(
            self.train_dataset,
            args,
            batch_size=args.per_device_train_batch_size,
            collate=self.data_collator,
            sampler=sampler,
            on_accelerator=args.device.type == "cuda",
        )

    def get_eval_dataloader(self, eval_dataset: Any = None) -> torch.utils.data.DataLoader:
        dataset = eval_dataset if eval_dataset is not None else getattr(self, "eval_dataset", None)
        if dataset is None:
            raise ValueError("evaluate() needs eval_dataset= (here or in the Trainer)")
        return self._inference_loader(dataset)

    def get_test_dataloader(self, test_dataset: Any) -> torch.utils.data.DataLoader:
        return self._inference_loader(test_dataset)

    def _inference_loader(self, dataset: Any, ranks: Any = None) -> torch.utils.data.DataLoader:
        """In order, unshuffled; under torch.distributed (`ranks`) this rank's share only."""
        batch_size = self.args.per_device_eval_batch_size
        sampler: Any = None
        if ranks is not None:
            sampler = ranks.eval_indices(len(dataset), batch_size)
        elif is_map_style(dataset):
            sampler = EpochBatches(len(dataset), batch_size, 0, 0, shuffle=False)
        return loader_for(
            dataset,
            self.args,
            batch_size=batch_size,
            collate=self.data_collator,
            sampler=sampler,
            on_accelerator=False,
        )


def overrides(trainer: Any, name: str) -> bool:
    """Whether the trainer's class replaces TrainerHooks' `name`."""
    return getattr(type(trainer), name) is not getattr(TrainerHooks, name)


def refused_overrides(cls: type, ours: type) -> list[str]:
    """Methods of `transformers.Trainer` that `cls` (a subclass of `ours`) overrides although
    `ours` has no such method, or has it for scripts to call only (NOT_CALLED_BY_THE_LOOP), so
    nothing would ever call the override."""
    from transformers import Trainer as TransformersTrainer

    found = set()
    for klass in cls.__mro__:
        if klass is ours or not issubclass(klass, ours):
            break
        for name in vars(klass):
            if name.startswith("__") or not callable(getattr(klass, name, None)):
                continue
            if hasattr(TransformersTrainer, name) and (
                not hasattr(ours, name)
                or name in _CALLED_BY_TRANSFORMERS_ONLY
                or name in NOT_CALLED_BY_THE_LOOP
            ):
                found.add(name)
    return sorted(found)


# Transformers' private methods ours has only for Transformers' own callers (its JIT checkpoint
# callback): overriding them would not change the loop's own saves.
_CALLED_BY_TRANSFORMERS_ONLY = frozenset({"_save_checkpoint", "_get_output_dir"})


def label_names(model: torch.nn.Module, args: Any) -> list[str]:
    """args.label_names, else the forward() arguments whose name holds "label" (Transformers'
    `find_labels`), else none."""
    if args.label_names:
        return list(args.label_names)
    from trainer.compat import uncompiled

    forward = inspect.signature(uncompiled(model).forward).parameters
    if "QuestionAnswering" in type(uncompiled(model)).__name__:
        return [name for name in forward if name in ("start_positions", "end_positions")]
    return [name for name in forward if "label" in name]


def _logits(outputs: Any, ignore_keys: list[str], first_is_loss: bool = False) -> Any:
    """Every output tensor but the loss and ignore_keys (one tensor, or a tuple of them). A
    tuple's first element is the loss when the model was given labels (`first_is_loss`, as
    Transformers reads it) or when it is a scalar."""
    if isinstance(outputs, Mapping) or hasattr(outputs, "keys"):
        values = [v for k, v in outputs.items() if k != "loss" and k not in ignore_keys]
    elif isinstance(outputs, (tuple, list)):
        drop = first_is_loss or maybe_loss(outputs) is not None
        values = list(outputs[1:]) if drop else list(outputs)
    elif isinstance(outputs, torch.Tensor) and outputs.dim() > 0:
        values = [outputs]
    else:
        values = []
    tensors = tuple(v.detach() for v in values if isinstance(v, torch.Tensor))
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else tensors
