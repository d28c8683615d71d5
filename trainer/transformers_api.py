"""The public methods of `transformers.Trainer` that scripts call besides train / evaluate /
predict, with Transformers' names, signatures and meaning.

Most are small helpers over the trainer's model, optimizer and arguments. The loop itself calls
`evaluation_loop` (through self, so a subclass's version runs) and `create_model_card` (from
push_to_hub). The others are for scripts to call; overriding one of those in a subclass is
refused when the subclass is constructed (`NOT_CALLED_BY_THE_LOOP` in `trainer/hooks.py`),
since the loop would never call the override.

`trainer.accelerator` is an `accelerate.Accelerator` built on first use, or by
`create_accelerator_and_postprocess()` (trainer/accelerate_compat.py: what it honours). The loop
itself never reads it.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from typing import Any

import torch

_NO_OPTIMIZER = "Trainer optimizer is None, please make sure you have setup the optimizer before."


class TransformersApi:
    """Transformers' public Trainer helpers (see the module doc)."""

    # Set by the Trainer's constructor; declared here for the methods below.
    args: Any
    model: Any
    model_init: Any
    optimizer: Any
    lr_scheduler: Any
    state: Any
    # The floating point operations counted since the last store_flos() (floating_point_ops).
    current_flos: float = 0.0
    hub_model_id: str | None = None

    # --- optimizer and schedule ---
    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        """create_optimizer(), then create_scheduler(num_training_steps) over it."""
        self.create_optimizer()
        self.create_scheduler(num_training_steps=num_training_steps)

    def get_learning_rates(self) -> list[float]:
        """The learning rate of each of the optimizer's parameter groups."""
        if self.optimizer is None:
            raise ValueError(_NO_OPTIMIZER)
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_optimizer_group(self, param: Any = None) -> Any:
        """The optimizer's group holding `param`, or (no param, or one in no group) the list of
        every group's parameters."""
        if self.optimizer is None:
            raise ValueError(_NO_OPTIMIZER)
        if param is not None:
            for group in self.optimizer.param_groups:
                if any(param is p for p in group["params"]):
                    return group
        return [group["params"] for group in self.optimizer.param_groups]

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        """The names of the parameters the default optimizer applies weight decay to: every
        trainable one but biases and normalisation weights (the optimizer's first group)."""
        from trainer.optim import decay_parameter_names

        return decay_parameter_names(model)

    def get_num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    # --- the model ---
    def call_model_init(self, trial: Any = None) -> torch.nn.Module:
        """A fresh model from model_init, given `trial` (an optuna.Trial or a Ray config) when
        model_init takes an argument."""
        if self.model_init is None:
            raise ValueError("call_model_init(): this Trainer was given model=, not model_init=")
        from trainer.trial import plan_trial

        plan = plan_trial(self.args, trial, self.model_init, has_model=False)
        model = plan.call_model_init(self.model_init)
        if model is None:
            raise RuntimeError("model_init should not return None.")
        return model

    def autocast_smart_context_manager(self, cache_enabled: bool | None = True) -> Any:
        """The autocast context training_step runs compute_loss in (bf16 / fp16 from the
        arguments; a null context in full precision)."""
        from trainer.model_io import autocast

        return autocast(self.args, self.args.device)

    def compute_loss_context_manager(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(self.autocast_smart_context_manager())
        return stack

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """Transformers' estimate for one forward and backward pass over `inputs`:
        6 x tokens x non-embedding parameters for a model that counts its parameters, else 0."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input in inputs and hasattr(self.model, "num_parameters"):
            return (
                6 * inputs[main_input].numel() * self.model.num_parameters(exclude_embeddings=True)
            )
        return 0

    def store_flos(self) -> None:
        """Adds the operations counted since the last call to `state.total_flos`."""
        self.state.total_flos = getattr(self.state, "total_flos", 0) + self.current_flos
        self.current_flos = 0.0

    # --- evaluation ---
    def evaluation_loop(
        self,
        dataloader: Any,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        """One pass of prediction_step over `dataloader`: an EvalLoopOutput (predictions,
        label_ids, metrics, num_samples). evaluate() and predict() call it through self."""
        from trainer.evaluation import evaluation_loop

        if prediction_loss_only is None:
            prediction_loss_only = self.args.prediction_loss_only
        if self.model is None:
            self.model = self._model_outside_train()
        return evaluation_loop(
            self,
            dataloader,
            prediction_loss_only=prediction_loss_only,
            ignore_keys=ignore_keys,
            prefix=metric_key_prefix,
            description=description,  # "Prediction" keeps the predictions under batch_eval_metrics
        )

    # --- data and batch geometry ---
    def num_examples(self, dataloader: Any) -> int:
        """The rows of the loader's dataset; without a sized dataset, batches x batch size."""
        try:
            dataset = dataloader.dataset
            inner = getattr(dataset, "dataset", None)
            if type(dataset).__name__ == "IterableDatasetShard" and inner is not None:
                return len(inner)
            return len(dataset)
        except (NameError, AttributeError, TypeError):
            return len(dataloader) * self.args.per_device_train_batch_size

    def get_batch_samples(
        self, epoch_iterator: Iterator[Any], num_batches: int, device: torch.device
    ) -> tuple[list[Any], torch.Tensor | int | None]:
        """Up to `num_batches` batches of the iterator and their loss items (label tokens, or
        rows without token labels): what one optimizer step normalises its loss by."""
        from trainer.model_io import loss_items, loss_shifts_labels

        batches: list[Any] = []
        for _ in range(num_batches):
            try:
                batches.append(next(epoch_iterator))
            except StopIteration:
                break
        if not batches or "labels" not in batches[0]:
            return batches, None
        shifts = loss_shifts_labels(self.model) if self.model is not None else False
        total = sum(loss_items(batch, shifts) for batch in batches)
        if isinstance(total, torch.Tensor):
            total = total.to(device)
        return batches, total

    def get_resumed_dataloader(self, dataloader: Any, num_batches: int) -> Any:
        """`dataloader` without its first `num_batches` batches (accelerate's
        skip_first_batches, as Transformers). The loop itself resumes from its own seeded
        batch order instead."""
        from accelerate import skip_first_batches

        return skip_first_batches(dataloader, num_batches)

    def get_total_train_batch_size(self, args: Any) -> int:
        """Rows per optimizer step over every process: batch x accumulation x world size."""
        from trainer import distributed

        ranks = distributed.current()
        world = ranks.world_size if ranks is not None else 1
        return args.train_batch_size * args.gradient_accumulation_steps * world

    def set_initial_training_values(
        self, args: Any, dataloader: Any
    ) -> tuple[int, int, int, int, int, int | None, int]:
        """(num_train_epochs, update steps per epoch, num_examples, num_train_samples,
        total_train_batch_size, batches per epoch, max_steps), as Transformers computes them."""
        max_steps = args.max_steps
        try:
            batches: int | None = len(dataloader)
        except TypeError:
            batches = None
        total = self.get_total_train_batch_size(args)
        if batches:
            per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
            if max_steps < 0:
                max_steps = math.ceil(args.num_train_epochs * per_epoch)
            examples = self.num_examples(dataloader)
            if args.max_steps > 0:
                epochs = math.ceil(max_steps / per_epoch)
                samples = max_steps * total
            else:
                epochs = math.ceil(args.num_train_epochs)
                samples = examples * args.num_train_epochs
        elif args.max_steps > 0:
            epochs, per_epoch = sys.maxsize, max_steps
            examples = samples = total * args.max_steps
        else:
            raise ValueError(
                "args.max_steps must be set to a positive value if dataloader does not have a "
                f"length, was {args.max_steps}"
            )
        steps_in_epoch = (
            batches if batches is not None else max_steps * args.gradient_accumulation_steps
        )
        return epochs, per_epoch, examples, samples, total, steps_in_epoch, max_steps

    # No tensor, context or sequence parallelism here: every model is whole on each process.
    def get_tp_size(self) -> int:
        return 1

    def get_cp_size(self) -> int:
        return 1

    def get_sp_size(self) -> int:
        return 1

    # --- processes ---
    def is_world_process_zero(self) -> bool:
        """Whether this is the main process of the run (rank 0 under torch.distributed)."""
        from trainer import distributed

        ranks = distributed.current()
        return ranks is None or ranks.is_main

    def is_local_process_zero(self) -> bool:
        """Whether this is the main process on its machine (LOCAL_RANK 0)."""
        import os

        from trainer import distributed

        if distributed.current() is None:
            return True
        return int(os.environ.get("LOCAL_RANK", "0")) == 0

    def end(self) -> None:
        """Waits for the Hub uploads still running and ends the torch.distributed process
        group, if there is one: call it once, at the very end of a script."""
        hub = getattr(self, "_hub_sync", None)
        if hub is not None:
            hub.wait()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # --- hyperparameter search ---
    def hyperparameter_search(
        self,
        hp_space: Any = None,
        compute_objective: Any = None,
        n_trials: int = 20,
        direction: str | list[str] = "minimize",
        backend: Any = None,
        hp_name: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Transformers' hyperparameter_search on optuna (default; the study is kept in an SQL
        storage, by default `output_dir/hp_search.db`, that `hpo status` reads) or Ray Tune.
        Returns transformers' BestRun (a list of them for several directions); see
        trainer/search.py for what differs."""
        from trainer.search import hyperparameter_search

        return hyperparameter_search(
            self, hp_space, compute_objective, n_trials, direction, backend, hp_name, **kwargs
        )

    # --- the Hub and reports ---
    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Creates (or finds) the Hub repository push_to_hub uploads to; sets hub_model_id."""
        if not self.is_world_process_zero():
            return
        from trainer.hub import hub_api, repo_name

        token = token if token is not None else self.args.hub_token
        private = private if private is not None else self.args.hub_private_repo
        url = hub_api(token).create_repo(repo_name(self.args), private=private, exist_ok=True)
        self.hub_model_id = url.repo_id

    def create_model_card(self, **kwargs: Any) -> None:
        """README.md in output_dir, from Transformers' model card arguments (language, license,
        tags, model_name, finetuned_from, tasks, dataset_tags, dataset, dataset_args)."""
        from trainer.model_card import write_model_card

        write_model_card(self.args, self.state, **kwargs)

    @staticmethod
    def metrics_format(metrics: dict[str, float]) -> dict[str, float]:
        """Metrics for printing: Transformers' formatting (runtimes as h:mm:ss, memory in MB,
        total_flos in GF, floats rounded)."""
        from transformers.trainer_pt_utils import metrics_format

        return metrics_format(metrics)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the first read of trainer.accelerator builds it
        # (a subclass may still assign its own).
        if name == "accelerator":
            self.create_accelerator_and_postprocess()
            return self.__dict__["accelerator"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def create_accelerator_and_postprocess(self) -> None:
        """`self.accelerator` from the current arguments (trainer/accelerate_compat.py)."""
        from trainer.accelerate_compat import build_accelerator

        self.accelerator = build_accelerator(self)
