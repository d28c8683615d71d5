"""Trainer: `train()` with the contract of `transformers.Trainer`.

`train()` reads top to bottom: resolve the trial and the checkpoint, build the run (model,
optimizer, scheduler, data), then one flat loop of optimizer steps. What happens after a step
(log, evaluation, report to the trial's search, checkpoint) and at the run's end is decided by
the pure functions of `step_plan` and carried out by `after_step` (`AfterStep`) and `_finish`.
What the loop calls lives beside it: `evaluate()` / `predict()` in `evaluation`
(`TrainerEvaluation`), the run's setup in `run`, the optimizer and schedule in `optim`, model
inputs and losses in `model_io`, seeding in `rng`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import traceback
from typing import Any

import torch

from trainer import checkpoint as ckpt
from trainer import distributed
from trainer.accelerate_compat import sync_accelerator
from trainer.after_step import AfterStep
from trainer.base import TrainerBase
from trainer.batch_size import batch_size_to_resume, find_executable_batch_size
from trainer.callbacks import TrainerCallback, TrainerControl
from trainer.data import loader_groups, step_groups
from trainer.evaluation import TrainerEvaluation
from trainer.hooks import overrides
from trainer.loss import count_input_tokens, label_smoother
from trainer.model_io import loss_items, loss_shifts_labels, to_device
from trainer.model_prep import release_model
from trainer.optim import steps_on_metrics
from trainer.resume_checks import restore_callback_states, warn_if_args_differ
from trainer.rng import set_seed
from trainer.run import Run, build_run, fresh_state, restore
from trainer.state import TrainOutput
from trainer.step_plan import Action, FinishFacts, plan_finish
from trainer.trial import TrialPlan, plan_trial


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; training stopped at the named step."""


class Trainer(AfterStep, TrainerEvaluation, TrainerBase):
    """train(), evaluate() and predict() with the contract of `transformers.Trainer`."""

    # Set by hyperparameter_search for its trials: the value reported at each evaluation.
    _hp_compute_objective: Any = None

    # This process's ranks while a run trains under torch.distributed (trainer/distributed.py).
    _ranks: distributed.Ranks | None = None

    # True while train() runs: an evaluate() then is the loop's (no fp16/bf16_full_eval cast).
    _in_train = False

    @property
    def _train_batch_size(self) -> int:
        """Transformers' attribute: the batch a run trains with, the one auto_find_batch_size
        settled on (or a resumed checkpoint's) once train() ran."""
        return self.args.train_batch_size

    # --- train ---
    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ) -> TrainOutput:
        """Trains from scratch or from a checkpoint (a path, or True for the newest in
        output_dir); `trial` is an optuna.Trial or a Ray Tune config dict whose params go onto a
        copy of the args and to model_init."""
        if kwargs:
            raise ValueError(f"train() got unexpected arguments {sorted(kwargs)}")
        if self.train_dataset is None:
            raise ValueError("train() needs train_dataset= in the Trainer")
        if self.args is not self._run_args:  # assigned (trainer.args = ...) since the last run
            self._args_template = self.args
        self._args_template.validate()  # its fields may have been assigned since creation
        self.label_smoother = label_smoother(self._args_template, self.model, warn=False)
        plan = plan_trial(
            self._args_template,
            trial,
            self.model_init,
            has_model=self.model is not None,
            compute_objective=self._hp_compute_objective,
        )
        args = self.args = plan.args
        self._release()
        checkpoint = self._resume_path(resume_from_checkpoint, plan)
        batch, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
        if checkpoint is not None and args.auto_find_batch_size:
            batch, accumulation = batch_size_to_resume(
                ckpt.read_state(checkpoint), batch, accumulation
            )

        def attempt(batch_size: int, accumulation_steps: int) -> TrainOutput:
            nonlocal checkpoint
            # Only the first attempt resumes: a checkpoint's data position counts batches of
            # its own size, so a retry with a smaller batch starts from scratch.
            resume, checkpoint = checkpoint, None
            self.args = args
            if (batch_size, accumulation_steps) != (
                args.per_device_train_batch_size,
                args.gradient_accumulation_steps,
            ):
                self.args = dataclasses.replace(
                    args,
                    per_device_train_batch_size=batch_size,
                    gradient_accumulation_steps=accumulation_steps,
                )
            self._run_args = self.args
            sync_accelerator(self)
            return self._train_once(plan, resume, ignore_keys_for_eval)

        self._in_train = True
        try:
            return find_executable_batch_size(
                attempt,
                batch,
                accumulation,
                auto_find_batch_size=args.auto_find_batch_size,
                before_retry=self._release,
            )
        except BaseException as error:
            # The traceback's frames hold the model and optimizer; clearing them lets the
            # memory go even while the caller still holds the exception (optuna does).
            self._release()
            traceback.clear_frames(error.__traceback__)
            raise
        finally:
            self._in_train = False

    def _train_once(
        self, plan: TrialPlan, checkpoint: str | None, ignore_keys_for_eval: list[str] | None
    ) -> TrainOutput:
        """One attempt at the whole run with the batch size and accumulation of self.args."""
        args = self.args
        if os.path.isdir(args.output_dir):
            ckpt.remove_leftovers(args.output_dir)  # temp dirs of a save that was killed
        saved = ckpt.read_state(checkpoint) if checkpoint else None
        set_seed(args.seed, args.full_determinism)
        # Under torch.distributed a step reads one global batch, shared out by rank.
        ranks = self._ranks = distributed.current()
        self.model = self._model_for_run(plan)
        run = build_run(
            args,
            plan,
            self.model,
            self.train_dataset,
            batch_size=args.per_device_train_batch_size * (ranks.world_size if ranks else 1),
            accumulation=args.gradient_accumulation_steps,
            create_optimizer=self._optimizer_for,
            create_scheduler=self._scheduler_for,
            ignore_keys_for_eval=ignore_keys_for_eval,
            train_loader=self.get_train_dataloader()
            if overrides(self, "get_train_dataloader")
            else None,
        )
        self._scaler = run.scaler
        self.model, self.optimizer, self.lr_scheduler = run.model, run.optimizer, run.scheduler
        self.state = fresh_state(run, args)
        if ranks is not None:
            ranks.begin(run.model, args.seed)
        if checkpoint and saved is not None:
            warn_if_args_differ(args, saved)
            if args.restore_callback_states_from_checkpoint:
                restore_callback_states(self.callback_handler, saved)
            own = not self._user_optimizer  # a user's optimizer keeps the checkpoint's values
            restore(checkpoint, saved, run, self.state, args, own_hyperparameters=own)
            if ranks is not None:
                ranks.restore_rng(checkpoint)
        if args.torch_compile:
            options = {"backend": args.torch_compile_backend, "mode": args.torch_compile_mode}
            run.model = torch.compile(run.model, **{k: v for k, v in options.items() if v})  # type: ignore[assignment]
        self._current_run = run
        try:
            return self._loop(run)
        finally:
            self._current_run = None

    def _optimizer_for(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        self.model = model
        if self.optimizer is None and self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, kwargs = self.optimizer_cls_and_kwargs
            self.optimizer = optimizer_cls(model.parameters(), **kwargs)
        return self.create_optimizer()

    def _scheduler_for(self, optimizer: torch.optim.Optimizer, max_steps: int) -> Any:
        return self.create_scheduler(num_training_steps=max_steps, optimizer=optimizer)

    # --- the loop ---
    def _loop(self, run: Run) -> TrainOutput:
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
            self.control.should_epoch_stop = False  # Transformers clears it as each epoch begins
            self.control = self._call("on_epoch_begin")
            exhausted = False
            groups = (
                loader_groups(run.train_loader, run.accumulation, epoch, skip)
                if run.train_loader is not None
                else step_groups(
                    self.train_dataset,
                    args,
                    collate=self.data_collator,
                    batch_size=run.batch_size,
                    accumulation=run.accumulation,
                    epoch=epoch,
                    skip_steps=skip,
                    on_accelerator=run.device.type == "cuda",
                    ranks=self._ranks,
                )
            )
            for group in groups:
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
                if self._ranks is not None:  # rank 0's callbacks decide stop / save for all
                    self._ranks.sync_control(self.control)
                if self._should_log(state.global_step):
                    logged_loss = self._log_training(
                        run, loss_this_run, logged_loss, steps_since_log, grad_norm
                    )
                    steps_since_log = 0
                self._after_step(run, epoch_end=False)
                if self.control.should_training_stop or state.global_step >= run.max_steps:
                    break
                if self.control.should_epoch_stop:
                    break
            else:
                exhausted = True
            if run.stopped_by_reporter:
                break  # pruned: Transformers raises there, no epoch end follows
            epoch_done = exhausted or state.steps_in_epoch == run.steps_per_epoch
            if epoch_done or self.control.should_epoch_stop:
                # An epoch a callback stopped ends where it is (its fractional epoch stays, as
                # in Transformers); the data position moves to the start of the next one.
                state.epoch_index, state.steps_in_epoch = epoch + 1, 0
                if epoch_done:
                    state.epoch = float(epoch + 1)
            # As in Transformers, an epoch ends with on_epoch_end, then the epoch strategies'
            # log, evaluation and save, also when max_steps or a callback stopped it early.
            self.control = self._call("on_epoch_end")
            if (args.logging_strategy == "epoch" or self.control.should_log) and steps_since_log:
                logged_loss = self._log_training(
                    run, loss_this_run, logged_loss, steps_since_log, grad_norm
                )
                steps_since_log = 0
            self._after_step(run, epoch_end=True)
        return self._finish(run, loss_this_run, steps_this_run, time.perf_counter() - started)

    def _accumulate(self, run: Run, group: list[Any]) -> torch.Tensor:
        """Forward and backward over one optimizer step's micro-batches.

        The loss is normalised over the loss tokens of the whole group (not a mean of
        micro-batch means), so a short last group and uneven padding weigh every token equally.
        """
        model = run.model
        shifts = loss_shifts_labels(model)
        total = sum(loss_items(batch, shifts) for batch in group)
        if self._ranks is not None:  # normalised by the global step's tokens
            total = self._ranks.sum(total)
        self._items_in_step = to_device(total, run.device)
        # Transformers passes the count only when the batch has labels to count.
        num_items = self._items_in_step if "labels" in group[0] else None
        if self.args.include_num_input_tokens_seen != "no":
            self.state.num_input_tokens_seen += sum(
                count_input_tokens(batch, self.args, self.processing_class) for batch in group
            )
        step_loss: torch.Tensor | None = None
        for index, batch in enumerate(group):
            detached = self.training_step(model, batch, num_items_in_batch=num_items).float()
            step_loss = detached if step_loss is None else step_loss + detached
            if index < len(group) - 1:  # Transformers: after every micro-batch but the last
                self.control = self._call("on_substep_end")
        self._items_in_step = None
        assert step_loss is not None  # a group holds at least one batch
        if self._ranks is not None:
            step_loss = self._ranks.sum(step_loss)
        return step_loss

    def _optimizer_step(self, run: Run, step_loss: torch.Tensor) -> torch.Tensor | None:
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
        if self._ranks is not None:
            self._ranks.sum_gradients(run.model)
        if self.args.max_grad_norm > 0:
            if run.scaler is not None:
                run.scaler.unscale_(run.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                run.model.parameters(), self.args.max_grad_norm
            )
        self.control = self._call("on_pre_optimizer_step")
        if run.scaler is not None:
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            run.optimizer.step()
        self.control = self._call("on_optimizer_step")
        # The rate this step used is the one to log (Transformers reads it before stepping).
        run.last_lr = float(run.optimizer.param_groups[0]["lr"])
        if not steps_on_metrics(run.scheduler):
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        every = self.args.torch_empty_cache_steps
        if every and run.device.type == "cuda" and (self.state.global_step + 1) % every == 0:
            torch.cuda.empty_cache()
        return grad_norm

    def _finish(
        self, run: Run, loss_this_run: torch.Tensor, steps: int, runtime: float
    ) -> TrainOutput:
        args, state = self.args, self.state
        final = FinishFacts(
            step=state.global_step,
            eval_strategy=args.eval_strategy,
            save_strategy=args.save_strategy,
            stopped_by_reporter=run.stopped_by_reporter,
            last_eval_step=run.last_eval_step,
            last_save_step=run.last_save_step,
            save_declined_step=run.save_declined_step,
        )
        for action in plan_finish(final):
            if action is Action.EVALUATE:
                self._evaluate_in_loop(run)
            elif action is Action.SAVE:
                self._save(run)
        release_model(run.model, run.hooks)
        if self._hub_sync is not None:
            self._hub_sync.wait()  # the last upload finishes before train() returns
            self._record_hub_failures()
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


__all__ = ["Trainer", "TrainerCallback", "NonFiniteLossError", "set_seed"]
