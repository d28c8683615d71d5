"""The task-specific keys of the `data` section, and what each task needs from the data.

Per task (`model.task`): the columns its rows are read from (and that the first row of each
.jsonl / the header of each .csv has them), the keys that only it takes, whether it needs a
Transformers tokenizer, `data.tokenizer: {train: wordpiece | bpe, vocab_size: N}`, and the
searchable data params of the space (`data.mlm_probability`, masked-lm only).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo.attrs import DATA_PREFIX, SEARCHABLE_DATA_PARAMS
from hpo.spec import (
    BYTES_TOKENIZER,
    SPECIAL_TOKEN_TASKS,
    TRAINED_TOKENIZER_KINDS,
    ParamSpec,
    TrainedTokenizerSpec,
)
from hpo.study.reader import Reader, is_int
from hpo.study.sections.model import BuiltModel

TRAINED_TOKENIZER_KEYS = ("train", "vocab_size", "min_frequency")
MIN_TRAINED_VOCAB = 16  # the five special tokens and a few pieces; less cannot tokenize text

# The column keys each task reads (key, default column name); every other column key of this
# table is refused for that task, so a key that does nothing is never silently accepted.
TASK_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "causal-lm": (("text_column", "text"),),
    "masked-lm": (("text_column", "text"),),
    "sequence-classification": (("text_column", "text"), ("label_column", "label")),
    "regression": (("text_column", "text"), ("label_column", "label")),
    "token-classification": (("tokens_column", "tokens"), ("tags_column", "tags")),
    "seq2seq-lm": (("source_column", "source"), ("target_column", "target")),
}
# Keys that only one task takes.
TASK_ONLY_KEYS = {"label_all_tokens": "token-classification", "mlm_probability": "masked-lm"}


@dataclass
class TaskData:
    """The task-specific values of the data section, as DataSpec fields."""

    columns: dict[str, str] = field(default_factory=dict)
    label_all_tokens: bool = False
    mlm_probability: float = 0.15


def read_task_keys(reader: Reader, section: dict[str, Any], task: str) -> TaskData:
    """The column keys of the task (others refused), label_all_tokens and mlm_probability."""
    problems = reader.problems
    wanted = dict(TASK_COLUMNS[task])
    found = TaskData()
    all_column_keys = {key for columns in TASK_COLUMNS.values() for key, _ in columns}
    for key in sorted(all_column_keys):
        if key not in section:
            continue
        if key not in wanted:
            takes = sorted(t for t, columns in TASK_COLUMNS.items() if key in dict(columns))
            problems.add(
                f"data.{key}",
                f"task {task} does not read it (it applies to {', '.join(takes)}); "
                f"{task} reads {', '.join('data.' + k for k in wanted)}",
            )
            continue
        found.columns[key] = reader.text(section[key], f"data.{key}") or wanted[key]
    for key, owner in TASK_ONLY_KEYS.items():
        if key in section and task != owner:
            problems.add(f"data.{key}", f"applies to task {owner} only (this study: {task})")
    value = section.get("label_all_tokens", False)
    if not isinstance(value, bool):
        problems.found("data.label_all_tokens", value, "true or false")
    else:
        found.label_all_tokens = value
    probability = reader.number(
        section.get("mlm_probability"),
        "data.mlm_probability",
        "a number between 0 and 1 (exclusive)",
        lambda v: 0 < v < 1,
    )
    if probability is not None:
        found.mlm_probability = float(probability)
    return found


def read_tokenizer(reader: Reader, value: Any, task: str) -> TrainedTokenizerSpec | None:
    """`{train: wordpiece | bpe, vocab_size: N, min_frequency: M}` (None when not a mapping);
    a task that needs special tokens refuses `bytes`."""
    if value == BYTES_TOKENIZER or value is None:
        if task in SPECIAL_TOKEN_TASKS:
            reader.problems.add(
                "data.tokenizer",
                f"{'bytes (the default)' if value is None else repr(value)} has no special "
                f"tokens (pad, mask, eos, words), which task {task} needs; train one on the "
                "data: data.tokenizer: {train: wordpiece, vocab_size: 1000}, or give a "
                "tokenizer folder",
            )
        return None
    if not isinstance(value, dict):
        return None
    problems = reader.problems
    problems.unknown_keys(value, TRAINED_TOKENIZER_KEYS, "data.tokenizer")
    kind = reader.choice(value.get("train"), "data.tokenizer.train", TRAINED_TOKENIZER_KINDS)
    vocab_size = reader.integer(
        value.get("vocab_size"), "data.tokenizer.vocab_size", minimum=MIN_TRAINED_VOCAB
    )
    if value.get("vocab_size") is None:
        problems.add(
            "data.tokenizer.vocab_size",
            "missing; expected the vocabulary size to train, e.g. 1000 (at most "
            "model.config.vocab_size)",
        )
    min_frequency = reader.integer(
        value.get("min_frequency"), "data.tokenizer.min_frequency", minimum=1, default=1
    )
    return TrainedTokenizerSpec(
        kind=kind, vocab_size=vocab_size or MIN_TRAINED_VOCAB, min_frequency=min_frequency or 1
    )


def check_trained_vocab(reader: Reader, built: BuiltModel, tokenizer: Any) -> None:
    """A trained tokenizer's ids (up to its vocab_size) must fit the model's embeddings."""
    vocab = getattr(built.config, "vocab_size", None)
    if (
        isinstance(tokenizer, TrainedTokenizerSpec)
        and is_int(vocab)
        and vocab < tokenizer.vocab_size
    ):
        reader.problems.add(
            "data.tokenizer.vocab_size",
            f"found {tokenizer.vocab_size}, but model.config.vocab_size is {vocab}; expected "
            f"<= {vocab} (or raise model.config.vocab_size)",
        )


def check_file_columns(
    reader: Reader, files: list[str], key: str, task: str, columns: dict[str, str]
) -> None:
    """The first row of each .jsonl file, and each .csv header, has the task's columns."""
    needed = {k: columns.get(k, default) for k, default in TASK_COLUMNS[task]}
    for path in files:
        present = _first_row_columns(Path(path))
        if present is None:
            continue
        for column_key, column in needed.items():
            if column not in present:
                reader.problems.add(
                    key,
                    f"{Path(path).name} has no column {column!r} (found {sorted(present)}); "
                    f"task {task} reads data.{column_key}: set it to the column's name",
                )


def _first_row_columns(path: Path) -> set[str] | None:
    """The column names of a file's first row (None: not a table, or unreadable here: the
    data cache reports it when it reads the rows)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            if path.suffix.lower() == ".csv":
                return set(next(csv.reader(handle), []))
            if path.suffix.lower() == ".jsonl":
                first = next((line for line in handle if line.strip()), None)
                record = json.loads(first) if first else None
                return set(record) if isinstance(record, dict) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def check_data_params(reader: Reader, task: str, space: tuple[ParamSpec, ...]) -> None:
    """`data.*` params of the space: only the searchable ones, for their task, in range."""
    for param in space:
        if not param.name.startswith(DATA_PREFIX):
            continue
        if param.name not in SEARCHABLE_DATA_PARAMS:
            continue  # reported by the space section
        if task != "masked-lm":
            reader.problems.add(
                f"space.{param.name}", f"applies to task masked-lm only (this study: {task})"
            )
            continue
        values = param.choices if param.type == "categorical" else (param.low, param.high)
        if param.type == "int" or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1 for v in values
        ):
            reader.problems.add(
                f"space.{param.name}",
                f"found {list(values)}; expected a float range (or choices) inside (0, 1)",
            )
