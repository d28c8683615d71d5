"""The Accelerate surface a Transformers user meets: `TrainingArguments.accelerator_config` and
`trainer.accelerator`, honest about what this trainer's loop does.

The loop does not run on Accelerate: it moves batches, accumulates gradients, scales fp16
losses and sums gradients across torch.distributed ranks itself (docs/TRAINER.md). What a
Transformers script reaches for is still here:

- `accelerator_config` takes Transformers' forms (None, a dict, a JSON file's path, an
  `AcceleratorConfig`) with Transformers' errors: the class itself instead of an instance
  (NotImplementedError), unknown keys, `use_configured_state=True` with no Accelerate state
  made beforehand (ValueError). It becomes transformers' `AcceleratorConfig`; None stays None
  (read as the defaults) so that arguments at their defaults never import torch.
- `gradient_accumulation_kwargs["num_steps"]` sets `gradient_accumulation_steps` when the
  Trainer is built, with Transformers' error when both are set: the loop then really
  accumulates that many micro-batches.
- The options that only change several processes' batches (`split_batches`, `dispatch_batches`,
  `even_batches`, `sync_each_batch`) are the same on one process whatever their value, so they
  are accepted there; under torch.distributed a value other than the default is refused, since
  the loop shards batches its own way (docs/TRAINER.md).
- `trainer.accelerator` is a real `accelerate.Accelerator`, built as Transformers builds it
  (device, mixed precision, dataloader configuration, data_seed, non_blocking, the gradient
  accumulation plugin) on first use, so a run that never reads it never imports accelerate.
  Where Transformers gives Accelerate `num_steps=1` and accumulates itself, this one is given
  the accumulation the loop does, so `accelerator.gradient_accumulation_steps` tells the truth
  (and `accelerator.backward` divides by it, as Accelerate documents). Its processes, device
  and mixed precision must match the loop's, or building it fails saying so. `non_blocking` reaches only the
  accelerator (for loaders a script prepares with it): the loop's own copies to a GPU are always
  non-blocking (trainer/model_io.py), which changes no value.

Private Accelerate names, as Transformers uses them: `PartialState._shared_state` (was a state
made beforehand?) and `AcceleratorState._reset_state` (a fresh one); tests/trainer/
test_accelerate_compat.py runs both against the installed accelerate.
"""

from __future__ import annotations

import os
from typing import Any

# Options whose values differ only between several processes' batches (Accelerate's
# DataLoaderShard / DataLoaderDispatcher, DDP's no_sync), with their defaults.
_MULTI_PROCESS_DEFAULTS = {"split_batches": False, "dispatch_batches": None, "even_batches": True}
_NUM_STEPS_CONFLICT = (  # Transformers' message
    "The `AcceleratorConfig`'s `num_steps` is set but `gradient_accumulation_steps` is greater "
    "than 1 in the passed `TrainingArguments`If using the passed `AcceleratorConfig` is "
    "desired, do not set the `TrainingArguments` `gradient_accumulation_steps`."
)


def normalise_accelerator_config(args: Any) -> None:
    """`args.accelerator_config` as transformers' AcceleratorConfig (None stays None); raises
    what Transformers raises for a class, an unknown key or an unconfigured state."""
    value = args.accelerator_config
    if value is None:
        return
    if isinstance(value, type):
        raise NotImplementedError(  # Transformers' message
            "Tried passing in a callable to `accelerator_config`, but this is not supported. "
            "Please pass in a fully constructed `AcceleratorConfig` object instead."
        )
    from transformers.trainer_pt_utils import AcceleratorConfig

    if isinstance(value, dict):
        value = AcceleratorConfig(**value)
    elif isinstance(value, (str, os.PathLike)):
        value = AcceleratorConfig.from_json_file(value)
    elif not isinstance(value, AcceleratorConfig):
        raise TypeError(
            f"accelerator_config={value!r}: pass a dict, a JSON file's path or an AcceleratorConfig"
        )
    if value.use_configured_state:
        from accelerate.state import PartialState

        if PartialState._shared_state == {}:
            raise ValueError(  # Transformers' message
                "Passing `'use_configured_state':True` to the AcceleratorConfig requires a "
                "pre-configured `AcceleratorState` or `PartialState` to be defined before calling "
                "`TrainingArguments`. "
            )
    object.__setattr__(args, "accelerator_config", value)


def apply_accelerator_config(args: Any) -> None:
    """What the config changes in the run, applied when a Trainer is built (where Transformers
    applies it): `num_steps` becomes `gradient_accumulation_steps`; multi-process options that
    the loop would not honour are refused."""
    config = args.accelerator_config
    if config is None:
        return
    kwargs = config.gradient_accumulation_kwargs or {}
    if "num_steps" in kwargs:
        if args.gradient_accumulation_steps > 1:
            raise ValueError(_NUM_STEPS_CONFLICT)
        args.gradient_accumulation_steps = kwargs["num_steps"]
    if args.world_size > 1:
        changed = {
            name: getattr(config, name)
            for name, default in _MULTI_PROCESS_DEFAULTS.items()
            if getattr(config, name) != default
        }
        if kwargs.get("sync_each_batch"):
            changed["gradient_accumulation_kwargs.sync_each_batch"] = True
        if changed:
            names = ", ".join(f"accelerator_config.{k}={v!r}" for k, v in changed.items())
            raise ValueError(
                f"{names} is not supported by hpo's trainer under several processes: it does not "
                "run on Accelerate; every rank reads per_device_train_batch_size rows of one "
                "global batch and gradients are summed once per optimizer step (docs/TRAINER.md); "
                "leave them at their defaults"
            )


def build_accelerator(trainer: Any) -> Any:
    """An `accelerate.Accelerator` configured as Transformers configures its own, from the
    trainer's current arguments; it must agree with the loop's processes and device."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin
    from transformers.trainer_pt_utils import AcceleratorConfig

    args = trainer.args
    config = args.accelerator_config or AcceleratorConfig()
    if not config.use_configured_state:
        # What Transformers' TrainingArguments does before it sets up its device: a fresh state,
        # so this trainer's precision and device are the ones Accelerate reports.
        AcceleratorState._reset_state(reset_partial_state=True)
    plugin_kwargs = {
        k: v for k, v in (config.gradient_accumulation_kwargs or {}).items() if k != "num_steps"
    }
    plugin_kwargs["num_steps"] = args.gradient_accumulation_steps
    dataloader_config = DataLoaderConfiguration(
        split_batches=config.split_batches,
        dispatch_batches=config.dispatch_batches,
        even_batches=config.even_batches,
        use_seedable_sampler=config.use_seedable_sampler,
        non_blocking=config.non_blocking,
    )
    dataloader_config.data_seed = args.data_seed
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "no"
    accelerator = Accelerator(
        cpu=args.device.type == "cpu",
        mixed_precision=None if config.use_configured_state else precision,
        dataloader_config=dataloader_config,
        gradient_accumulation_plugin=GradientAccumulationPlugin(**plugin_kwargs),
    )
    theirs = (accelerator.num_processes, accelerator.device.type, accelerator.mixed_precision)
    ours = (args.world_size, args.device.type, precision)
    if theirs != ours:
        raise ValueError(
            "the Accelerate state (processes, device, mixed precision: {}) differs from the "
            "trainer's ({}); trainer.accelerator must describe the run the loop does".format(
                ", ".join(map(str, theirs)), ", ".join(map(str, ours))
            )
        )
    return accelerator


def sync_accelerator(trainer: Any) -> None:
    """Once built, `trainer.accelerator` follows the accumulation a run really does (a trial's
    params, auto_find_batch_size's retries). Nothing is built or imported here."""
    accelerator = trainer.__dict__.get("accelerator")
    if getattr(accelerator, "gradient_state", None) is not None:  # ours, or a user's Accelerator
        accelerator.gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
