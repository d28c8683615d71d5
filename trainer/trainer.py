"""Trainer: `train()` and `evaluate()` with the contract of `transformers.Trainer`.

`train()` reads top to bottom: resolve the trial and the checkpoint, build the run (model,
optimizer, scheduler, data), then one flat loop of optimizer steps. Each component decides its
own timing: `_after_step` decides logging, evaluation, checkpointing and reporting.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import itertools
import json
import logging
import math
import os
import random
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainer import checkpoint as ckpt
from trainer.args import TrainingArguments
from trainer.batch_size import run_with_batch_size_search
from trainer.callbacks import (
    CallbackHandler,
    ProgressCallback,
    TrainerCallback,
    TrainerControl,
    objective_name,
)
from trainer.data import EpochBatches, default_collate, is_map_style, loss_items, make_loader
from trainer.state import TrainerState, TrainOutput
from trainer.trial import TrialPlan, plan_trial

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; training stopped at the named step."""


@dataclass
class _Run:
    """Everything one call of train() builds and must release on every exit path."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any | None
    device: torch.device
    batch_size: int
    accumulation: int
    max_steps: int
    steps_per_epoch: int | None
    num_epochs: int
    plan: TrialPlan
    ignore_keys_for_eval: list[str] | None
    last_eval_step: int = -1
    last_save_step: int = -1
    last_metrics: dict[str, float] = field(default_factory=dict)
    stopped_by_reporter: bool = False


def set_seed(seed: int, full_determinism: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if full_determinism:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module | None = None,
        args: TrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        data_collator: Callable[[Any], Any] | None = None,
        model_init: Callable[..., torch.nn.Module] | None = None,
        compute_metrics: Callable[[Any], dict[str, float]] | None = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        *,
        processing_class: Any = None,
    ) -> None:
        args = args if args is not None else TrainingArguments()
        if not isinstance(args, TrainingArguments):
            raise ValueError(
                f"args={type(args).__name__}: pass trainer.TrainingArguments (same field names as "
                "transformers.TrainingArguments)"
            )
        if (model is None) == (model_init is None):
            raise ValueError(
                "Trainer needs exactly one of model= or model_init= (got both or neither)"
            )
        if model_init is not None and optimizers != (None, None):
            raise ValueError(
                "optimizers= cannot be combined with model_init=: each train() builds a fresh model, "
                "so the trainer must build its optimizer too"
            )
        if args.eval_strategy != "no" and eval_dataset is None:
            raise ValueError(
                f"eval_strategy={args.eval_strategy!r} needs eval_dataset=; pass one or set "
                "eval_strategy='no'"
            )
        if train_dataset is not None and not is_map_style(train_dataset) and args.max_steps <= 0:
            raise ValueError(
                "max_steps=-1 with an iterable train_dataset (no length): set max_steps to a positive "
                "number of optimizer steps"
            )
        self._args_template = args
        self.args = args
        self.model = model
        self.model_init = model_init
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.data_collator = data_collator or default_collate
        self.compute_metrics = compute_metrics
        # A tokenizer or processor (Transformers' name); saved into every checkpoint if it can be.
        self.processing_class = processing_class
        self.optimizer, self.lr_scheduler = optimizers
        self._user_optimizer = optimizers[0] is not None
        self.state = TrainerState()
        self.control = TrainerControl()
        self.callback_handler = CallbackHandler([ProgressCallback(), *(callbacks or [])])
        self._initial_weights: dict[str, torch.Tensor] | None = None
        self.control = self._call("on_init_end")

    # --- callbacks (Transformers API) ---
    def add_callback(self, callback: Any) -> None:
        self.callback_handler.add(callback)

    def pop_callback(self, callback: Any) -> Any | None:
        return self.callback_handler.pop(callback)

    def remove_callback(self, callback: Any) -> None:
        self.callback_handler.pop(callback)

    def _call(self, event: str, **kwargs: Any) -> TrainerControl:
        return self.callback_handler.call(
            event,
            self.args,
            self.state,
            self.control,
            model=self.model,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
            **kwargs,
        )

    # --- train ---
    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ) -> TrainOutput:
        if kwargs:
            raise ValueError(f"train() got unexpected arguments {sorted(kwargs)}")
        if self.train_dataset is None:
            raise ValueError("train() needs train_dataset= in the Trainer")
        plan = plan_trial(
            self._args_template, trial, self.model_init, has_model=self.model is not None
        )
        self.args = plan.args
        self._release(keep_model=self.model_init is None)
        checkpoint = self._resume_path(resume_from_checkpoint, plan)
        try:
            return run_with_batch_size_search(self, plan, checkpoint, ignore_keys_for_eval)
        except BaseException as error:
            # The traceback's frames hold the model and optimizer; clearing them lets the
            # memory go even while the caller still holds the exception (optuna does).
            self._release(keep_model=self.model_init is None)
            traceback.clear_frames(error.__traceback__)
            raise

    def _resume_path(self, resume: str | bool | None, plan: TrialPlan) -> str | None:
        if resume is True:
            return ckpt.latest_checkpoint(self.args.output_dir)
        if isinstance(resume, (str, os.PathLike)):
            path = os.fspath(resume)
            ckpt.read_state(path)  # fail now, with the path, if it is missing or corrupt
            return path
        if resume not in (None, False):
            raise ValueError(
                f"resume_from_checkpoint={resume!r}: pass a checkpoint path, True (newest in "
                "output_dir) or None"
            )
        return plan.reporter.resume_checkpoint() if plan.reporter is not None else None

    def _release(self, keep_model: bool) -> None:
        """Drops the references this trainer holds to a run's model, optimizer and scheduler."""
        if not keep_model:
            self.model = None
        if not self._user_optimizer:
            self.optimizer = self.lr_scheduler = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _train_once(
        self,
        plan: TrialPlan,
        checkpoint: str | None,
        batch_size: int,
        accumulation: int,
        ignore_keys_for_eval: list[str] | None,
    ) -> TrainOutput:
        """One attempt at the whole run with a fixed per-device batch size."""
        args = self.args
        if os.path.isdir(args.output_dir):
            ckpt.remove_leftovers(args.output_dir)  # temp dirs of a save that was killed
        saved = ckpt.read_state(checkpoint) if checkpoint else None
        set_seed(args.seed, args.full_determinism)
        run = self._build_run(plan, batch_size, accumulation, ignore_keys_for_eval)
        self.state = self._fresh_state(run, plan)
        if checkpoint and saved is not None:
            self._restore(checkpoint, saved, run)
        if args.torch_compile:
            run.model = torch.compile(run.model)
        return self._loop(run)

    # --- building a run ---
    def _build_run(
        self,
        plan: TrialPlan,
        batch_size: int,
        accumulation: int,
        ignore_keys_for_eval: list[str] | None,
    ) -> _Run:
        args = self.args
        device = torch.device("cuda" if torch.cuda.is_available() and not args.use_cpu else "cpu")
        model = self._build_model(plan).to(device)
        model.train()
        self.model = model
        steps_per_epoch, max_steps, num_epochs = self._schedule_length(batch_size, accumulation)
        optimizer = self.optimizer if self._user_optimizer else _build_optimizer(model, args)
        scheduler = self.lr_scheduler
        if scheduler is None:
            scheduler = _build_scheduler(optimizer, args, max_steps)
        self.optimizer, self.lr_scheduler = optimizer, scheduler
        scaler = torch.amp.GradScaler(device.type) if args.fp16 else None
        return _Run(
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            device=device,
            batch_size=batch_size,
            accumulation=accumulation,
            max_steps=max_steps,
            steps_per_epoch=steps_per_epoch,
            num_epochs=num_epochs,
            plan=plan,
            ignore_keys_for_eval=ignore_keys_for_eval,
        )

    def _build_model(self, plan: TrialPlan) -> torch.nn.Module:
        if self.model_init is None:
            assert self.model is not None
            if self.args.auto_find_batch_size:
                self._remember_or_restore_initial_weights(self.model)
            return self.model
        model = plan.call_model_init(self.model_init)
        if not isinstance(model, torch.nn.Module):
            raise ValueError(
                f"model_init returned {type(model).__name__}, expected a torch.nn.Module"
            )
        return model

    def _remember_or_restore_initial_weights(self, model: torch.nn.Module) -> None:
        # Without model_init, a retry after OOM must still start from the initial weights,
        # not from the half-trained ones (which Transformers keeps).
        if self._initial_weights is None:
            self._initial_weights = {
                k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            }
        else:
            model.load_state_dict(self._initial_weights)

    def _schedule_length(self, batch_size: int, accumulation: int) -> tuple[int | None, int, int]:
        """(optimizer steps per epoch or None, total optimizer steps, epochs to iterate)."""
        args = self.args
        if not is_map_style(self.train_dataset):
            return None, args.max_steps, 1_000_000_000  # epochs end when the iterable does
        batches = len(
            EpochBatches(
                len(self.train_dataset), batch_size, 0, 0, drop_last=args.dataloader_drop_last
            )
        )
        if batches == 0:
            raise ValueError(
                f"train_dataset has {len(self.train_dataset)} rows: fewer than one batch of "
                f"{batch_size} with dataloader_drop_last=True"
            )
        steps_per_epoch = math.ceil(batches / accumulation)  # a short last group is a step too
        if args.max_steps > 0:
            return steps_per_epoch, args.max_steps, math.ceil(args.max_steps / steps_per_epoch)
        max_steps = math.ceil(args.num_train_epochs * steps_per_epoch)
        return steps_per_epoch, max_steps, math.ceil(args.num_train_epochs)

    def _fresh_state(self, run: _Run, plan: TrialPlan) -> TrainerState:
        args = self.args

        def steps(value: float | None) -> float:
            if value is None:
                return 0
            return math.ceil(run.max_steps * value) if value < 1 else int(value)

        return TrainerState(
            max_steps=run.max_steps,
            num_train_epochs=run.num_epochs if run.steps_per_epoch else 0,
            logging_steps=steps(args.logging_steps),
            eval_steps=steps(args.eval_steps),
            save_steps=steps(args.save_steps),
            train_batch_size=run.batch_size,
            gradient_accumulation_steps=run.accumulation,
            is_hyper_param_search=plan.trial is not None,
            trial_name=plan.trial_name,
            trial_params=plan.params or None,
        )

    def _restore(self, checkpoint: str, saved: TrainerState, run: _Run) -> None:
        ckpt.load_weights(checkpoint, run.model)
        ckpt.load_training_state(
            checkpoint, optimizer=run.optimizer, scheduler=run.scheduler, scaler=run.scaler
        )
        if not self._user_optimizer:
            _apply_hyperparameters(run.optimizer, run.scheduler, self.args)
        if saved.max_steps != run.max_steps:
            logger.warning(
                "resuming %s: it was trained for max_steps=%s, this run has %s",
                checkpoint,
                saved.max_steps,
                run.max_steps,
            )
        kept = {
            "max_steps",
            "num_train_epochs",
            "logging_steps",
            "eval_steps",
            "save_steps",
            "is_hyper_param_search",
            "trial_name",
            "trial_params",
        }
        for name, value in vars(saved).items():
            if name not in kept:
                setattr(self.state, name, value)
        run.last_save_step = saved.global_step
        if self.args.ignore_data_skip:
            self.state.steps_in_epoch = 0

    # --- the loop ---
    def _loop(self, run: _Run) -> TrainOutput:
        args, state = self.args, self.state
        self.control = TrainerControl()
        self.control = self._call("on_train_begin")
        if args.eval_on_start and state.global_step == 0:
            self._evaluate_in_loop(run)
        # One running sum on the device; a log reads it (one sync) and subtracts the last read.
        loss_this_run = torch.zeros((), device=run.device, dtype=torch.float64)
        logged_loss = 0.0
        steps_since_log = steps_this_run = 0
        grad_norm = None
        started = time.perf_counter()
        for epoch in range(state.epoch_index, run.num_epochs):
            if self.control.should_training_stop or state.global_step >= run.max_steps:
                break
            skip = state.steps_in_epoch if epoch == state.epoch_index else 0
            state.epoch_index, state.steps_in_epoch = epoch, skip
            self.control = self._call("on_epoch_begin")
            exhausted = False
            for group in self._step_groups(run, epoch, skip):
                self.control = self._call("on_step_begin")
                step_loss = self._accumulate(run, group)
                grad_norm = self._optimizer_step(run, step_loss)
                state.global_step += 1
                state.steps_in_epoch += 1
                steps_this_run += 1
                steps_since_log += 1
                state.epoch = epoch + (
                    state.steps_in_epoch / run.steps_per_epoch if run.steps_per_epoch else 0
                )
                loss_this_run += step_loss
                self.control = self._call("on_step_end")
                if self._should_log(state.global_step):
                    logged_loss = self._log_training(
                        run, loss_this_run, logged_loss, steps_since_log, grad_norm
                    )
                    steps_since_log = 0
                self._after_step(run, epoch_end=False)
                if self.control.should_training_stop or state.global_step >= run.max_steps:
                    break
            else:
                exhausted = True
            if exhausted or state.steps_in_epoch == run.steps_per_epoch:
                state.epoch_index, state.steps_in_epoch = epoch + 1, 0
                state.epoch = float(epoch + 1)
                if args.logging_strategy == "epoch" and steps_since_log:
                    logged_loss = self._log_training(
                        run, loss_this_run, logged_loss, steps_since_log, grad_norm
                    )
                    steps_since_log = 0
                self.control = self._call("on_epoch_end")
                self._after_step(run, epoch_end=True)
        return self._finish(run, loss_this_run, steps_this_run, time.perf_counter() - started)

    def _step_groups(self, run: _Run, epoch: int, skip_steps: int) -> Iterator[list[Any]]:
        """Micro-batches of one epoch, grouped per optimizer step, after the seen ones."""
        args = self.args
        if run.steps_per_epoch is not None:
            sampler = EpochBatches(
                len(self.train_dataset),
                run.batch_size,
                args.data_seed if args.data_seed is not None else args.seed,
                epoch,
                drop_last=args.dataloader_drop_last,
                skip=skip_steps * run.accumulation,
            )
            batches: Iterable[Any] = self._loader(self.train_dataset, run.batch_size, sampler, run)
        else:
            if hasattr(self.train_dataset, "set_epoch"):
                self.train_dataset.set_epoch(epoch)
            loader = self._loader(self.train_dataset, run.batch_size, None, run)
            # An iterable has no index to jump to: the seen batches are read and dropped.
            batches = itertools.islice(loader, skip_steps * run.accumulation, None)
        iterator = iter(batches)
        while group := list(itertools.islice(iterator, run.accumulation)):
            yield group

    def _loader(
        self, dataset: Any, batch_size: int, sampler: EpochBatches | None, run: _Run | None
    ) -> Any:
        args = self.args
        return make_loader(
            dataset,
            batch_size=batch_size,
            collate=self.data_collator,
            sampler=sampler,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory and run is not None and run.device.type == "cuda",
            persistent_workers=args.dataloader_persistent_workers,
            prefetch_factor=args.dataloader_prefetch_factor,
            drop_last=args.dataloader_drop_last,
        )

    def _accumulate(self, run: _Run, group: list[Any]) -> torch.Tensor:
        """Forward and backward over one optimizer step's micro-batches.

        The loss is normalised over the loss tokens of the whole group (not a mean of
        micro-batch means), so a short last group and uneven padding weigh every token equally.
        """
        model = run.model
        shifts = _loss_shifts_labels(model)
        counts = [loss_items(batch, shifts) for batch in group]
        total = sum(counts)
        model_normalises = _accepts_loss_kwargs(model) and "labels" in group[0]
        step_loss: torch.Tensor | None = None
        for batch, count in zip(group, counts, strict=True):
            inputs = self._prepare_inputs(batch, run.device, model)
            with self._autocast(run.device):
                if model_normalises:
                    # The model sums its token losses and divides by the group's token count.
                    loss = _extract_loss(model(**inputs, num_items_in_batch=_to(total, run.device)))
                else:
                    loss = _extract_loss(model(**inputs)) * (
                        _to(count, run.device) / _to(total, run.device)
                    )
            (run.scaler.scale(loss) if run.scaler is not None else loss).backward()
            detached = loss.detach().float()
            step_loss = detached if step_loss is None else step_loss + detached
        assert step_loss is not None  # a group holds at least one batch
        return step_loss

    def _optimizer_step(self, run: _Run, step_loss: torch.Tensor) -> torch.Tensor | None:
        # On CPU reading the value costs a microsecond (no asynchronous device to wait for); on
        # an accelerator it is one small synchronisation per optimizer step, the price of never
        # applying an update computed from a NaN loss.
        value = step_loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training loss is {value} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch:.2f}); lower learning_rate, enable max_grad_norm, or "
                "check the data of this step"
            )
        grad_norm = None
        if self.args.max_grad_norm > 0:
            if run.scaler is not None:
                run.scaler.unscale_(run.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                run.model.parameters(), self.args.max_grad_norm
            )
        if run.scaler is not None:
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            run.optimizer.step()
        if not _steps_on_metrics(self.args):
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.args.bf16:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        if self.args.fp16:
            return torch.autocast(device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _prepare_inputs(
        self, batch: Any, device: torch.device, model: torch.nn.Module
    ) -> dict[str, Any]:
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"a batch must be a dict of model inputs, got {type(batch).__name__}; check data_collator"
            )
        accepted = _forward_params(model) if self.args.remove_unused_columns else None
        inputs = {}
        for key, value in batch.items():
            if accepted is not None and key not in accepted:
                continue
            if device.type != "cpu" and isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=True)
            inputs[key] = value
        return inputs

    # --- timing of logs, evaluations, checkpoints, reports ---
    def _should_log(self, step: int) -> bool:
        args = self.args
        if self.control.should_log or (args.logging_first_step and step == 1):
            return True
        every = self.state.logging_steps
        return args.logging_strategy == "steps" and bool(every) and step % every == 0

    def _after_step(self, run: _Run, epoch_end: bool) -> None:
        args, state, control = self.args, self.state, self.control
        step = state.global_step
        if epoch_end:
            evaluate = args.eval_strategy == "epoch"
            save = args.save_strategy == "epoch"
        else:
            evaluate = (
                args.eval_strategy == "steps"
                and step % state.eval_steps == 0
                and step >= args.eval_delay
            )
            save = args.save_strategy == "steps" and step % state.save_steps == 0
        evaluate = (evaluate or control.should_evaluate) and run.last_eval_step != step
        save = save or control.should_save
        control.reset_step_flags()
        improved = False
        if evaluate:
            improved = self._evaluate_in_loop(run)
            save = save or (args.save_strategy == "best" and improved)
        reporter = run.plan.reporter
        needs_checkpoint = evaluate and reporter is not None and reporter.needs_checkpoint
        if (save or needs_checkpoint) and run.last_save_step != step:
            self._save(run)
        if evaluate and reporter is not None:
            reporter.report(
                run.last_metrics, step, state.last_checkpoint if needs_checkpoint else None
            )
            if reporter.should_stop():
                run.stopped_by_reporter = True
                self.control.should_training_stop = True

    def _log_training(
        self,
        run: _Run,
        loss_total: torch.Tensor,
        logged_before: float,
        steps: int,
        grad_norm: torch.Tensor | None,
    ) -> float:
        """Logs the mean step loss since the last log; returns the running total it read."""
        total = loss_total.item()
        logs: dict[str, float] = {"loss": round((total - logged_before) / max(steps, 1), 6)}
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)
        logs["learning_rate"] = float(run.optimizer.param_groups[0]["lr"])
        self.log(logs)
        return total

    def log(self, logs: dict[str, float]) -> None:
        """Appends a row (with epoch and step) to state.log_history and calls on_log."""
        row = {**logs, "epoch": round(self.state.epoch, 4), "step": self.state.global_step}
        self.state.log_history.append(row)
        self.control = self._call("on_log", logs=logs)

    def _evaluate_in_loop(self, run: _Run) -> bool:
        """Evaluates, tracks the best metric and steps a metric-driven scheduler; True if best."""
        metrics = self.evaluate(ignore_keys=run.ignore_keys_for_eval)
        run.last_eval_step = self.state.global_step
        run.last_metrics = metrics
        name = objective_name(self.args)
        if name not in metrics:
            if self.args.metric_for_best_model is None and not self.args.load_best_model_at_end:
                return False
            raise ValueError(
                f"metric_for_best_model={self.args.metric_for_best_model!r} ({name}) is not among "
                f"the evaluation metrics {sorted(metrics)}"
            )
        value = float(metrics[name])
        if _steps_on_metrics(self.args):
            run.scheduler.step(value)
        best = self.state.best_metric
        greater = (
            bool(self.args.greater_is_better) if self.args.greater_is_better is not None else False
        )
        if best is None or (value > best if greater else value < best):
            self.state.best_metric = value
            self.state.best_global_step = self.state.global_step
            return True
        return False

    def _save(self, run: _Run) -> str:
        state, args = self.state, self.args
        step = state.global_step
        final = ckpt.checkpoint_dir(args.output_dir, step)
        state.last_checkpoint = final
        if state.best_global_step == step:
            state.best_model_checkpoint = final

        def write(directory: str) -> None:
            ckpt.save_training_state(
                directory,
                model=run.model,
                optimizer=run.optimizer,
                scheduler=run.scheduler,
                scaler=run.scaler,
                state=state,
                args_dict=args.to_dict(),
                model_only=args.save_only_model,
            )
            if hasattr(self.processing_class, "save_pretrained"):
                self.processing_class.save_pretrained(directory)

        ckpt.write_atomically(args.output_dir, step, write)
        run.last_save_step = step
        ckpt.rotate(args.output_dir, args.save_total_limit, state.best_model_checkpoint)
        if args.push_to_hub:
            from trainer.hub import push_checkpoint

            push_checkpoint(args, final)
        self.control = self._call("on_save", checkpoint_dir=final)
        return final

    def _finish(
        self, run: _Run, loss_this_run: torch.Tensor, steps: int, runtime: float
    ) -> TrainOutput:
        args, state = self.args, self.state
        if not run.stopped_by_reporter:
            if args.eval_strategy != "no" and run.last_eval_step != state.global_step:
                self._evaluate_in_loop(run)
            if args.save_strategy in ("steps", "epoch") and run.last_save_step != state.global_step:
                self._save(run)
        if args.push_to_hub and state.last_checkpoint:
            from trainer.hub import push_checkpoint

            push_checkpoint(args, state.last_checkpoint, at_end=True)
        if args.load_best_model_at_end and state.best_model_checkpoint:
            ckpt.load_weights(state.best_model_checkpoint, run.model)
        train_loss = loss_this_run.item() / steps if steps else 0.0
        samples = steps * run.batch_size * run.accumulation
        metrics = {
            "train_runtime": round(runtime, 4),
            "train_samples_per_second": round(samples / runtime, 3) if runtime > 0 else 0.0,
            "train_steps_per_second": round(steps / runtime, 3) if runtime > 0 else 0.0,
            "train_loss": train_loss,
            "epoch": state.epoch,
        }
        self.log(dict(metrics))
        metrics.update(run.last_metrics)
        self.control = self._call("on_train_end")
        if run.plan.reporter is not None:
            run.plan.reporter.on_stop()  # optuna: raises TrialPruned after this clean stop
        if self.model_init is not None and not self._user_optimizer:
            self.optimizer = self.lr_scheduler = None  # the next trial builds its own
        return TrainOutput(state.global_step, train_loss, metrics)

    # --- the helpers Transformers example scripts call after training ---
    def save_model(self, output_dir: str | None = None) -> None:
        """Writes the model (save_pretrained for Transformers models, else model.safetensors)."""
        directory = output_dir or self.args.output_dir
        if self.model is None:
            raise ValueError("save_model(): there is no model yet; call train() first")
        os.makedirs(directory, exist_ok=True)
        if hasattr(self.model, "save_pretrained"):
            self.model.save_pretrained(directory)
        else:
            from safetensors.torch import save_model

            save_model(self.model, os.path.join(directory, ckpt.WEIGHTS_NAME))
        if hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(directory)

    def log_metrics(self, split: str, metrics: dict[str, float]) -> None:
        print(f"***** {split} metrics *****")
        for key in sorted(metrics):
            print(f"  {key:<30} = {metrics[key]}")

    def save_metrics(self, split: str, metrics: dict[str, float]) -> None:
        os.makedirs(self.args.output_dir, exist_ok=True)
        path = os.path.join(self.args.output_dir, f"{split}_results.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)

    def save_state(self) -> None:
        os.makedirs(self.args.output_dir, exist_ok=True)
        self.state.save_to_json(os.path.join(self.args.output_dir, ckpt.TRAINER_STATE_NAME))

    # --- evaluate ---
    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate() needs eval_dataset= (here or in the Trainer)")
        if self.model is None:
            self.model = _build_model_outside_train(self)
        model = self.model
        device = next(model.parameters()).device
        batch_size = self.args.per_device_eval_batch_size
        sampler = None
        if is_map_style(dataset):
            sampler = EpochBatches(len(dataset), batch_size, 0, 0, shuffle=False)
        loader = self._loader(dataset, batch_size, sampler, None)
        want_predictions = self.compute_metrics is not None and not self.args.prediction_loss_only
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), device=device)
        rows = batches = 0
        has_loss = False
        predictions: list[Any] = []
        labels: list[Any] = []
        started = time.perf_counter()
        with torch.no_grad():
            for batch in loader:
                inputs = self._prepare_inputs(batch, device, model)
                with self._autocast(device):
                    outputs = model(**inputs)
                n = _batch_rows(inputs)
                loss = _maybe_loss(outputs)
                if loss is not None:
                    loss_sum += loss.detach().float() * n
                    has_loss = True
                rows += n
                batches += 1
                if want_predictions:
                    predictions.append(_logits(outputs, ignore_keys))
                    labels.append(inputs.get("labels"))
        if was_training:
            model.train()
        runtime = time.perf_counter() - started
        metrics: dict[str, float] = {}
        if has_loss and rows:
            metrics[f"{metric_key_prefix}_loss"] = loss_sum.item() / rows
        if want_predictions:
            from transformers.trainer_utils import EvalPrediction

            extra = self.compute_metrics(EvalPrediction(_concat(predictions), _concat(labels)))
            for key, value in extra.items():
                name = (
                    key if key.startswith(f"{metric_key_prefix}_") else f"{metric_key_prefix}_{key}"
                )
                metrics[name] = value
        metrics[f"{metric_key_prefix}_runtime"] = round(runtime, 4)
        metrics[f"{metric_key_prefix}_samples_per_second"] = (
            round(rows / runtime, 3) if runtime else 0.0
        )
        metrics[f"{metric_key_prefix}_steps_per_second"] = (
            round(batches / runtime, 3) if runtime else 0.0
        )
        metrics["epoch"] = self.state.epoch
        self.log(dict(metrics))
        self.control = self._call("on_evaluate", metrics=metrics)
        return metrics


# --- helpers without trainer state ---
def _build_model_outside_train(trainer: Trainer) -> torch.nn.Module:
    if trainer.model_init is None:
        raise ValueError("no model: pass model= or model_init= to the Trainer")
    plan = plan_trial(trainer.args, None, trainer.model_init, has_model=False)
    return plan.call_model_init(trainer.model_init)


def _build_optimizer(model: torch.nn.Module, args: TrainingArguments) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    norm_params = {
        id(p)
        for module in model.modules()
        if "norm" in type(module).__name__.lower()
        for p in module.parameters(recurse=False)
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # Transformers' rule: no weight decay on biases and normalisation weights.
        (no_decay if name.endswith("bias") or id(param) in norm_params else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # Always the same two groups (Transformers' layout), whatever weight_decay is: a checkpoint
    # must load into a run with another weight_decay (PBT mutates it), and group 0 is the
    # decayed one for code that adjusts it.
    groups = [group for group in groups if group["params"]]
    if args.optim == "sgd":
        return torch.optim.SGD(groups, lr=args.learning_rate)
    return torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        # Same algorithm either way; the multi-tensor kernel is faster than torch's default
        # per-parameter loop on CPU (where torch does not pick it by itself).
        fused=True if args.optim == "adamw_torch_fused" else None,
        foreach=True if args.optim == "adamw_torch" else None,
    )


def _apply_hyperparameters(
    optimizer: torch.optim.Optimizer, scheduler: Any, args: TrainingArguments
) -> None:
    """After loading an optimizer state, put this run's hyperparameters back over the saved ones.

    `load_state_dict` restores the learning rate, decay and betas the checkpoint was saved with;
    a run resumed with other values (a PBT mutation, a user's change) must train with its own.
    The optimizer's moments and the schedule's position are kept. With unchanged values this
    changes nothing, so an exact resume stays bitwise exact.
    """
    for index, group in enumerate(optimizer.param_groups):
        if index == 0 and len(optimizer.param_groups) == 2:
            group["weight_decay"] = args.weight_decay  # group 1 holds biases and norms: no decay
        if "betas" in group:
            group["betas"] = (args.adam_beta1, args.adam_beta2)
            group["eps"] = args.adam_epsilon
    lr_changed = any(
        group.get("initial_lr", args.learning_rate) != args.learning_rate
        for group in optimizer.param_groups
    )
    if not lr_changed or not hasattr(scheduler, "base_lrs") or not hasattr(scheduler, "lr_lambdas"):
        return
    for group in optimizer.param_groups:
        group["initial_lr"] = args.learning_rate
    scheduler.base_lrs = [args.learning_rate for _ in optimizer.param_groups]
    rates = [
        base * lam(scheduler.last_epoch)
        for base, lam in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
    ]
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = rate
    scheduler._last_lr = list(rates)


def _build_scheduler(
    optimizer: torch.optim.Optimizer, args: TrainingArguments, max_steps: int
) -> Any:
    from transformers.optimization import get_scheduler

    return get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=args.get_warmup_steps(max_steps),
        num_training_steps=max_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs or {},
    )


def _steps_on_metrics(args: TrainingArguments) -> bool:
    return args.lr_scheduler_type in ("reduce_lr_on_plateau", "greedy")


def _to(value: torch.Tensor | int, device: torch.device) -> torch.Tensor | int:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _extract_loss(outputs: Any) -> torch.Tensor:
    loss = _maybe_loss(outputs)
    if loss is None:
        raise ValueError(
            f"the model returned no loss ({type(outputs).__name__}); give it labels, or return "
            "an object with .loss or a dict with 'loss'"
        )
    return loss


def _maybe_loss(outputs: Any) -> torch.Tensor | None:
    if isinstance(outputs, Mapping):
        return outputs.get("loss")
    if isinstance(outputs, torch.Tensor) and outputs.dim() == 0:
        return outputs
    return getattr(outputs, "loss", None)


def _logits(outputs: Any, ignore_keys: list[str] | None) -> Any:
    if isinstance(outputs, Mapping) or hasattr(outputs, "keys"):
        values = [v for k, v in outputs.items() if k != "loss" and k not in (ignore_keys or [])]
    else:
        values = [getattr(outputs, "logits", None)]
    values = [v for v in values if isinstance(v, torch.Tensor)]
    if not values:
        return None
    return values[0].detach().float().cpu()


def _concat(parts: list[Any]) -> Any:
    tensors = [p for p in parts if p is not None]
    if not tensors:
        return None
    return torch.cat(tensors).numpy()


def _batch_rows(inputs: Mapping[str, Any]) -> int:
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    return 1


_FORWARD_PARAMS: dict[type, frozenset[str] | None] = {}
_ACCEPTS_KWARGS: dict[type, bool] = {}
_SHIFTS: dict[type, bool] = {}


def _forward_params(model: torch.nn.Module) -> frozenset[str] | None:
    """The keyword names forward() takes, or None when it takes **kwargs (accepts anything)."""
    cls = type(model)
    if cls not in _FORWARD_PARAMS:
        params = inspect.signature(model.forward).parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in params):
            _FORWARD_PARAMS[cls] = None
        else:
            _FORWARD_PARAMS[cls] = frozenset(p.name for p in params)
    return _FORWARD_PARAMS[cls]


def _accepts_loss_kwargs(model: torch.nn.Module) -> bool:
    """Whether the model normalises its loss by `num_items_in_batch` (Transformers models)."""
    cls = type(model)
    if cls not in _ACCEPTS_KWARGS:
        declared = getattr(model, "accepts_loss_kwargs", None)
        if declared is not None:
            _ACCEPTS_KWARGS[cls] = bool(declared)
        else:
            is_hf = hasattr(model, "loss_function") and hasattr(model, "config")
            _ACCEPTS_KWARGS[cls] = is_hf and _forward_params(model) is None
    return _ACCEPTS_KWARGS[cls]


def _loss_shifts_labels(model: torch.nn.Module) -> bool:
    """Causal-LM losses predict token i+1 from i, so label position 0 is never a target."""
    cls = type(model)
    if cls not in _SHIFTS:
        shifts = False
        loss_type = getattr(model, "loss_type", None)
        if loss_type is not None:
            try:
                from transformers.loss.loss_utils import LOSS_MAPPING, ForCausalLMLoss

                config = getattr(model, "config", None)
                shifts = LOSS_MAPPING.get(loss_type) is ForCausalLMLoss and not getattr(
                    config, "is_encoder_decoder", False
                )
            except ImportError:  # pragma: no cover - transformers is a dependency
                shifts = False
        _SHIFTS[cls] = shifts
    return _SHIFTS[cls]


__all__ = ["Trainer", "TrainerCallback", "NonFiniteLossError", "set_seed"]
