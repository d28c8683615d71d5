"""The model card (README.md) `trainer.push_to_hub(**kwargs)` writes, from Transformers' card
arguments (model_name, language, license, tags, finetuned_from, tasks, dataset, dataset_tags,
dataset_args) and the training's last evaluation."""

from __future__ import annotations

import os
from typing import Any

from trainer.args import TrainingArguments
from trainer.hub import repo_name
from trainer.keys import EVAL_PREFIX

MODEL_CARD_KEYS = (
    "model_name",
    "language",
    "license",
    "tags",
    "finetuned_from",
    "tasks",
    "dataset",
    "dataset_tags",
    "dataset_args",
)


def write_model_card(args: TrainingArguments, state: Any, **kwargs: Any) -> str:
    """README.md in output_dir: the card metadata push_to_hub's kwargs give (Transformers'
    names), the training's last metrics. Unknown keys are refused, not dropped."""
    unknown = sorted(set(kwargs) - set(MODEL_CARD_KEYS))
    if unknown:
        raise TypeError(
            f"push_to_hub() got unknown arguments {unknown}; it takes commit_message, blocking, "
            f"token, revision, private and the model card's {list(MODEL_CARD_KEYS)}"
        )
    from huggingface_hub import ModelCard, ModelCardData

    def as_list(value: Any) -> list[Any] | None:
        return (
            None if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
        )

    data = ModelCardData(
        language=kwargs.get("language"),
        license=kwargs.get("license"),
        tags=as_list(kwargs.get("tags")),
        datasets=as_list(kwargs.get("dataset_tags")),
        base_model=kwargs.get("finetuned_from"),
    )
    name = kwargs.get("model_name") or repo_name(args).split("/")[-1]
    results: dict[str, Any] = next(
        (row for row in reversed(state.log_history) if any(k.startswith(EVAL_PREFIX) for k in row)),
        {},
    )
    lines = [f"# {name}", "", "Trained with the `trainer` package of hpo."]
    if kwargs.get("dataset"):
        lines.append(f"Dataset: {kwargs['dataset']}.")
    if results:
        lines += ["", "## Evaluation", ""]
        lines += [f"- {key}: {value}" for key, value in sorted(results.items())]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
    assert args.output_dir is not None  # validate() fills it at creation and again at train()
    path = os.path.join(args.output_dir, "README.md")
    card.save(path)
    return path
