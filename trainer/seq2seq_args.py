"""Seq2SeqTrainingArguments: TrainingArguments plus Transformers' generation fields, for
`Seq2SeqTrainer`. A `@dataclass` subclass like Transformers' own, so it keeps the checked
construction of `TrainingArguments`. Torch-free, like `trainer/args.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.args import ArgumentProblem, TrainingArguments, TrainingArgumentsError

_SORTISH = (
    "sortish_sampler=True is not supported (batches come in the seeded, resumable random "
    "order; length-sorted sampling is not implemented); leave it at False"
)


@dataclass
class Seq2SeqTrainingArguments(TrainingArguments):
    """Transformers' Seq2SeqTrainingArguments: with `predict_with_generate`, evaluate() and
    predict() of a `Seq2SeqTrainer` return generated token ids (padded to the generation's
    max_length) instead of logits, so compute_metrics can score text (ROUGE, BLEU)."""

    # Refused at True (see _SORTISH); kept as a field so scripts that pass False run unchanged.
    sortish_sampler: bool = False
    predict_with_generate: bool = False
    # The `max_length` / `num_beams` of generate() when the call passes none (else the model's
    # generation config decides).
    generation_max_length: int | None = None
    generation_num_beams: int | None = None
    # A transformers.GenerationConfig, or the path / model id of one (its from_pretrained).
    generation_config: str | Path | Any | None = None

    def validate(self) -> None:
        problems: list[ArgumentProblem] = []
        try:
            super().validate()
        except TrainingArgumentsError as error:
            problems.extend(error.problems)
        problems.extend(_generation_problems(self))
        if problems:
            raise TrainingArgumentsError(problems)

    def to_dict(self) -> dict[str, Any]:
        """As TrainingArguments.to_dict(), with a GenerationConfig as its dict (JSON-ready)."""
        values = super().to_dict()
        for key, value in values.items():
            if hasattr(value, "to_dict") and type(value).__name__ == "GenerationConfig":
                values[key] = value.to_dict()
        return values

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)


def _generation_problems(args: Seq2SeqTrainingArguments) -> list[ArgumentProblem]:
    problems = []
    if args.sortish_sampler:
        problems.append(ArgumentProblem("sortish_sampler", True, _SORTISH, text=_SORTISH))
    for name in ("generation_max_length", "generation_num_beams"):
        value = getattr(args, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            problems.append(ArgumentProblem(name, value, "None or an integer >= 1"))
    return problems
