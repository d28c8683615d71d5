"""The data collator a task needs beyond stacking fixed-size rows, and per-trial data params.

- masked-lm: Transformers' `DataCollatorForLanguageModeling(mlm=True)` (80/10/10 masking of
  `mlm_probability` of the tokens, labels -100 elsewhere), fresh masks every training batch.
  The eval blocks were masked once, when the cache was built (`fixed_eval_masks`: the same
  collator with a fixed seed, at the study's `data.mlm_probability`), and pass through as they
  are: every evaluation of every trial scores the same masked positions, so eval_loss compares
  trials (and steps, for the pruner) whatever masking rate each trial trains with;
- seq2seq-lm: Transformers' `DataCollatorForSeq2Seq` (sources padded with the pad id, labels
  with -100; the model builds its decoder inputs from the labels);
- every other task: None (the trainer's default collation stacks the cached rows).

Both load the tokenizer saved with the data cache. `data.mlm_probability` may be searched: the
study's model_init reads a trial's `data.*` params (`apply_data_params`), as it reads `model.*`
ones, and sets them on the collator the trial's Trainer was given before its first batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpo.attrs import DATA_PREFIX
from hpo.errors import HpoError
from hpo.spec import StudySpec


def needs_tokenizer(task: str) -> str:
    return (
        f"model.task {task}: needs a Transformers tokenizer (data.tokenizer: a folder, or "
        "{train: wordpiece, vocab_size: N}), not 'bytes'"
    )


def study_data_collator(spec: StudySpec, tokenizer_dir: str | None) -> Any:
    """The collator of the study's task (None: the trainer's default)."""
    if spec.model.task not in ("masked-lm", "seq2seq-lm"):
        return None
    if tokenizer_dir is None:
        raise HpoError(needs_tokenizer(spec.model.task))
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    if spec.model.task == "masked-lm":
        return MaskingCollator(
            transformers.DataCollatorForLanguageModeling(
                tokenizer, mlm=True, mlm_probability=spec.data.mlm_probability
            )
        )
    return transformers.DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


class MaskingCollator:
    """Masks training blocks with Transformers' collator; stacks eval blocks, masked already."""

    def __init__(self, masking: Any) -> None:
        self.masking = masking

    @property
    def mlm_probability(self) -> float:
        return float(self.masking.mlm_probability)

    @mlm_probability.setter
    def mlm_probability(self, value: float) -> None:
        self.masking.mlm_probability = float(value)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if "labels" in items[0]:  # an eval block: its fixed masks
            import torch

            return {key: torch.stack([item[key] for item in items]) for key in items[0]}
        return self.masking(items)


def fixed_eval_masks(tokenizer: Any, blocks: Any, probability: float, seed: int) -> tuple[Any, Any]:
    """(masked ids, labels) of the eval blocks: Transformers' masking, seeded, done once."""
    import numpy as np
    import torch
    from transformers import DataCollatorForLanguageModeling

    if len(blocks) == 0:
        return blocks, np.zeros(blocks.shape, np.int64)
    masking = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=probability)
    # The global generator, seeded inside fork_rng (the process's own stream is left as it
    # was): the collator's `seed=` refuses to run in a forked worker process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        batch = masking([{"input_ids": torch.as_tensor(row.astype(np.int64))} for row in blocks])
    return batch["input_ids"].numpy().astype(blocks.dtype), batch["labels"].numpy()


def data_params(trial: Any) -> dict[str, Any]:
    """A trial's `data.<key>` params as {key: value}: an optuna trial's `.params` or a Ray
    config dict (reading them marks them read for the trainer's unread-params check)."""
    if trial is None:
        return {}
    params = trial if isinstance(trial, Mapping) else getattr(trial, "params", {})
    found = {}
    for name in list(params):
        if isinstance(name, str) and name.startswith(DATA_PREFIX):
            value = params[name]
            found[name[len(DATA_PREFIX) :]] = getattr(value, "item", lambda v=value: v)()
    return found


def apply_data_params(collator: Any, settings: Mapping[str, Any], defaults: Any) -> None:
    """Set the trial's data params on the collator; unset ones go back to the study's value
    (a worker's next trial must not inherit the last one's)."""
    if collator is None or not hasattr(collator, "mlm_probability"):
        return
    collator.mlm_probability = float(settings.get("mlm_probability", defaults.mlm_probability))
