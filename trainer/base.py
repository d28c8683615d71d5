"""What a Trainer holds between runs and the Transformers API around its loop.

`TrainerBase` takes the constructor arguments (checked once), the callbacks and their events,
the model or model_init, and the helpers example scripts call after training (`save_model`,
`log_metrics`, `save_metrics`, `save_state`). `trainer.Trainer` adds train() and evaluate().
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from typing import Any, cast

import torch

from trainer import checkpoint as ckpt
from trainer.accelerate_compat import apply_accelerator_config
from trainer.args import TrainingArguments
from trainer.callbacks import CallbackHandler, TrainerControl
from trainer.data import default_collator, is_map_style
from trainer.default_callbacks import default_callbacks
from trainer.hooks import TrainerHooks, refused_overrides
from trainer.keys import STEP_KEY
from trainer.loss import label_smoother
from trainer.reporting import reporting_callbacks
from trainer.resume_checks import restore_callback_states
from trainer.state import TrainerState
from trainer.transformers_api import TransformersApi
from trainer.trial import TrialPlan, plan_trial


class TrainerBase(TransformersApi, TrainerHooks):
    """The Trainer's constructor, callbacks and post-training helpers (see the module doc)."""

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: Callable[[Any], Any] | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        model_init: Callable[..., torch.nn.Module] | None = None,
        compute_loss_func: Callable[..., Any] | None = None,
        compute_metrics: Callable[[Any], dict[str, float]] | None = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        optimizer_cls_and_kwargs: tuple[type, dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        """Transformers' parameters, in Transformers' order."""
        refused = refused_overrides(type(self), _own_trainer_class(self))
        if refused:
            raise TypeError(
                f"{type(self).__name__} overrides transformers.Trainer method(s) {refused} that "
                "trainer.Trainer never calls, so the override would be silently ignored; override "
                "compute_loss, training_step, prediction_step, evaluate, create_optimizer, "
                "create_scheduler, get_train_dataloader, get_eval_dataloader or log instead"
            )
        if optimizer_cls_and_kwargs is not None and optimizers[0] is not None:
            raise ValueError("pass optimizers= or optimizer_cls_and_kwargs=, not both")
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
        if args.save_strategy == "best" and args.metric_for_best_model is None:
            raise ValueError(  # Transformers' message (its Trainer refuses it here too)
                "`args.metric_for_best_model` must be provided when using 'best' save_strategy or "
                "if `args.load_best_model_at_end` is set to `True`."
            )
        if train_dataset is not None and not is_map_style(train_dataset) and args.max_steps <= 0:
            raise ValueError(
                "max_steps=-1 with an iterable train_dataset (no length): set max_steps to a positive "
                "number of optimizer steps"
            )
        # Where Transformers applies it: accelerator_config's num_steps, and its refusals.
        apply_accelerator_config(args)
        self._args_template = args
        self.args = args
        self.model = model
        self.model_init = model_init
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.data_collator = data_collator or default_collator(processing_class)
        self.compute_metrics = compute_metrics
        self.compute_loss_func = compute_loss_func
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer_cls_and_kwargs = optimizer_cls_and_kwargs
        # From label_smoothing_factor; warned about now for a multi-label model, as Transformers
        # does, and set again by train() (whose args may have been assigned since).
        self.label_smoother: Any = label_smoother(args, model)
        # A tokenizer or processor (Transformers' name); saved into every checkpoint if it can be.
        self.processing_class = processing_class
        # What self.args was last set to by the trainer itself: a different object there means
        # the user assigned trainer.args, and the next train() starts from it.
        self._run_args: TrainingArguments | None = args
        self.optimizer, self.lr_scheduler = optimizers
        self._user_optimizer = optimizers[0] is not None
        self.state = TrainerState()
        self.control = TrainerControl()
        jit = _jit_checkpoint_callbacks(args)
        reporting = reporting_callbacks(cast(list[str], args.report_to))  # validate() listed it
        self.callback_handler = CallbackHandler(
            default_callbacks(args, [*reporting, *jit], callbacks),
            model,
            processing_class,
            self.optimizer,
            self.lr_scheduler,
        )
        for callback in jit:  # installs its SIGTERM handler, as in Transformers
            callback.set_trainer(self)
        self._initial_weights: dict[str, torch.Tensor] | None = None
        if args.push_to_hub:  # named now, as Transformers does (its repo is made by the uploader)
            self._hub()
        self.control = self._call("on_init_end")

    # --- callbacks (Transformers API) ---
    def add_callback(self, callback: Any) -> None:
        """Adds a callback (class or instance) at the end of the list."""
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback: Any) -> Any | None:
        """Removes and returns the first callback that is `callback` (an instance) or an
        instance of it (a class: ours or Transformers'); None when there is none."""
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback: Any) -> None:
        """pop_callback without the return value."""
        self.callback_handler.remove_callback(callback)

    def _load_callback_state(self) -> None:
        """Transformers' name (its tests and subclasses call it): with
        `restore_callback_states_from_checkpoint`, rebuilds the stateful callbacks and the
        control flags from `self.state.stateful_callbacks` (a checkpoint's trainer_state.json).
        train() restores the callbacks itself when it resumes; its loop starts with clear flags,
        as Transformers' on_train_begin clears them."""
        if not self.args.restore_callback_states_from_checkpoint:
            return
        saved = getattr(self.state, "stateful_callbacks", None) or {}
        restore_callback_states(self.callback_handler, self.state)
        control = saved.get("TrainerControl")
        if control:
            self.control = TrainerControl(**control.get("args", {}))

    def _call(self, event: str, **kwargs: Any) -> TrainerControl:
        # What Transformers hands every callback: the trainer's current objects. Passed, not
        # stored on the handler, so that a released model or optimizer is not kept alive there.
        return self.callback_handler.call_event(
            event,
            self.args,
            self.state,
            self.control,
            model=self.model,
            processing_class=self.processing_class,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
            **kwargs,
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds epoch (and the input tokens seen, when counted) to `logs`, appends the row with
        its step to state.log_history and calls on_log (Transformers' signature)."""
        logs["epoch"] = round(self.state.epoch, 4)
        if self.args.include_num_input_tokens_seen != "no":
            logs["num_input_tokens_seen"] = self.state.num_input_tokens_seen
        self.state.log_history.append({**logs, STEP_KEY: self.state.global_step})
        self.control = self._call("on_log", logs=logs)

    # --- the model and optimizer of a run ---
    def _model_for_run(self, plan: TrialPlan) -> torch.nn.Module:
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

    def _model_outside_train(self) -> torch.nn.Module:
        """A model for evaluate() before any train(): model_init called without a trial."""
        if self.model_init is None:
            raise ValueError("no model: pass model= or model_init= to the Trainer")
        plan = plan_trial(self.args, None, self.model_init, has_model=False)
        return plan.call_model_init(self.model_init)

    def _resume_path(self, resume: str | bool | None, plan: TrialPlan) -> str | None:
        if resume is True:
            return ckpt.latest_checkpoint(self.args.output_dir)
        if isinstance(resume, (str, os.PathLike)):
            path = os.fspath(resume)
            if not os.path.isdir(path):  # Transformers' words (and a ValueError, as its)
                raise ckpt.CheckpointError(f"Can't find a valid checkpoint at {path}")
            ckpt.read_state(path)  # fail now, with the path, if it is missing or corrupt
            return path
        if resume not in (None, False):
            raise ValueError(
                f"resume_from_checkpoint={resume!r}: pass a checkpoint path, True (newest in "
                "output_dir) or None"
            )
        return plan.reporter.resume_checkpoint() if plan.reporter is not None else None

    def _release(self) -> None:
        """Drops the references this trainer holds to a run's model (one model_init built),
        optimizer and scheduler (the ones it built).

        Collects only when it dropped something: a full collection scans the whole heap of
        torch and transformers (0.2 s quiet, 1 s under load), which the first train() of a
        Trainer given a model would otherwise pay for nothing.
        """
        released = False
        if self.model_init is not None and self.model is not None:
            self.model, released = None, True
        if not self._user_optimizer and (
            self.optimizer is not None or self.lr_scheduler is not None
        ):
            self.optimizer = self.lr_scheduler = None
            released = True
        if not released:
            return
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- the Hub (trainer/hub.py) ---
    _hub_sync: Any = None  # the background uploader, made at the first push

    def _hub(self) -> Any:
        if self._hub_sync is None:
            from trainer.hub import HubSync

            self._hub_sync = HubSync(self.args)
        return self._hub_sync

    def _record_hub_failures(self) -> None:
        if self._hub_sync is not None:
            self.state.hub_push_failures.extend(self._hub_sync.take_failures())

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Saves the model into output_dir and uploads it (Transformers' push_to_hub); waits
        for a checkpoint upload still running first. `kwargs` fill the model card (README.md):
        model_name, language, license, tags, finetuned_from, tasks, dataset, dataset_tags."""
        from trainer.hub import push_folder

        self._call("on_push_begin")
        self.save_model(_internal_call=True)
        self.create_model_card(**kwargs)
        if self._hub_sync is not None:
            self._hub_sync.wait()
        return push_folder(
            self.args,
            self.args.output_dir,
            commit_message=commit_message or "End of training",
            token=token,
            private=private,
            revision=revision,
            blocking=blocking,
        )

    # --- the helpers Transformers example scripts call after training ---
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Writes the model (save_pretrained for Transformers models, else model.safetensors);
        with push_to_hub, a call from the user also pushes it (as Transformers does)."""
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
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save")

    def log_metrics(self, split: str, metrics: dict[str, float]) -> None:
        """Prints the metrics of a split, one per line, sorted by name."""
        print(f"***** {split} metrics *****")
        for key in sorted(metrics):
            print(f"  {key:<30} = {metrics[key]}")

    def save_metrics(self, split: str, metrics: dict[str, float]) -> None:
        """Writes `{split}_results.json` into output_dir."""
        os.makedirs(self.args.output_dir, exist_ok=True)
        path = os.path.join(self.args.output_dir, f"{split}_results.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)

    def save_state(self) -> None:
        """Writes the trainer state as `trainer_state.json` into output_dir."""
        os.makedirs(self.args.output_dir, exist_ok=True)
        self.state.save_to_json(os.path.join(self.args.output_dir, ckpt.TRAINER_STATE_NAME))


def _jit_checkpoint_callbacks(args: TrainingArguments) -> list[Any]:
    """Transformers' own JITCheckpointCallback for enable_jit_checkpoint: after a SIGTERM (and
    its grace period) it saves a checkpoint at the next step boundary and stops training,
    through the Trainer's `_save_checkpoint`."""
    if not args.enable_jit_checkpoint:
        return []
    from transformers.trainer_jit_checkpoint import JITCheckpointCallback

    return [JITCheckpointCallback()]


def _own_trainer_class(trainer: Any) -> type:
    """The first class of trainer's MRO defined in this package (trainer.Trainer)."""
    for klass in type(trainer).__mro__:
        if klass.__module__.startswith("trainer."):
            return klass
    return TrainerBase
