"""The data collator a task needs beyond stacking fixed-size rows, and per-trial data params.

- masked-lm: Transformers' `DataCollatorForLanguageModeling(mlm=True)` (80/10/10 masking of
  `mlm_probability` of the tokens, labels -100 elsewhere), fresh masks every batch;
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


def study_data_collator(spec: StudySpec, tokenizer_dir: str | None) -> Any:
    """The collator of the study's task (None: the trainer's default)."""
    if spec.model.task not in ("masked-lm", "seq2seq-lm"):
        return None
    if tokenizer_dir is None:
        raise HpoError(
            f"model.task {spec.model.task}: needs a Transformers tokenizer (data.tokenizer: a "
            "folder, or {train: wordpiece, vocab_size: N}), not 'bytes'"
        )
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    if spec.model.task == "masked-lm":
        return transformers.DataCollatorForLanguageModeling(
            tokenizer, mlm=True, mlm_probability=spec.data.mlm_probability
        )
    return transformers.DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


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
