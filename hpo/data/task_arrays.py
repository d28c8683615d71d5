"""Rows of a labelled or paired task -> the token arrays the data cache stores, per task.

Every builder takes (data spec, tokenizer, train rows, eval rows or None) and returns
({"<split>_<array>": array}, extra meta). With no eval rows, `data.eval_fraction` of the train
rows is held out (seeded: the same split in every run). The arrays:
- sequence-classification, regression: `input_ids` [n, block_size] padded, `lengths`, `labels`
  (int64 class ids, or float32 values for regression);
- token-classification: `input_ids`, `lengths`, `labels` [n, block_size] (-100 where the loss
  ignores a position: special tokens, padding, non-first sub-tokens);
- seq2seq-lm: `input_ids`, `lengths` (the source), `target_ids`, `target_lengths`.
Plain-text tasks (causal-lm, masked-lm) are cut into blocks in `hpo.data.cache`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hpo.data.sources import Rows
from hpo.errors import HpoError
from hpo.spec import TEXT_TASKS, DataSpec

SPLIT_SEED = 0  # fixed: the eval split and the eval subset are the same in every run

Arrays = dict[str, np.ndarray]


def training_texts(task: str, rows: Rows) -> list[str]:
    """The text of train rows a tokenizer is trained on (`data.tokenizer: {train: ...}`)."""
    if task in TEXT_TASKS:
        return list(rows)
    if task == "token-classification":
        return [" ".join(words) for words, _ in rows]
    if task == "seq2seq-lm":
        return [text for pair in rows for text in pair]
    return [text for text, _ in rows]


def task_arrays(
    task: str, data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows | None
) -> tuple[Arrays, dict[str, Any]]:
    """The arrays and extra meta of a task whose rows are pairs (not plain text)."""
    builders: dict[str, Callable[..., tuple[Arrays, dict[str, Any]]]] = {
        "sequence-classification": _classification_arrays,
        "regression": _regression_arrays,
        "token-classification": _token_classification_arrays,
        "seq2seq-lm": _seq2seq_arrays,
    }
    if eval_rows is None:
        train_index, eval_index = hold_out(np.arange(len(train_rows)), data.eval_fraction, "rows")
        eval_rows = [train_rows[i] for i in eval_index]
        train_rows = [train_rows[i] for i in train_index]
    return builders[task](data, tokenizer, train_rows, eval_rows)


def hold_out(items: np.ndarray, fraction: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic (seeded) split: `fraction` of the items, at least one, go to eval."""
    if fraction <= 0:
        return items, items[:0]
    if len(items) < 2:
        raise HpoError(
            f"data: only {len(items)} {what}, too few to hold out data.eval_fraction={fraction}; "
            "add data, lower block_size or give data.eval_files"
        )
    n_eval = min(len(items) - 1, max(1, round(len(items) * fraction)))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(items))
    return items[np.sort(order[n_eval:])], items[np.sort(order[:n_eval])]


def token_dtype(vocab_size: int) -> type:
    return np.uint16 if vocab_size <= 2**16 else np.int32


def _padded_texts(
    arrays: Arrays, keys: tuple[str, str], texts: list[str], tokenizer: Any, block_size: int
) -> None:
    """Padded ids and lengths of `texts` stored under keys (ids key, lengths key)."""
    ids, lengths = tokenizer.encode_padded(texts, block_size)
    arrays[keys[0]] = ids.astype(token_dtype(tokenizer.vocab_size))
    arrays[keys[1]] = lengths.astype(np.int32)


def _source_keys(split: str) -> tuple[str, str]:
    return f"{split}_input_ids", f"{split}_lengths"


def _classification_arrays(
    data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows
) -> tuple[Arrays, dict[str, Any]]:
    label_names, label_ids = label_mapping([r[1] for r in train_rows + eval_rows])
    arrays: Arrays = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        texts = [text for text, _ in rows]
        _padded_texts(arrays, _source_keys(split), texts, tokenizer, data.block_size)
        arrays[f"{split}_labels"] = np.array([label_ids[label] for _, label in rows], np.int64)
    return arrays, {"num_labels": len(label_names), "label_names": label_names}


def label_mapping(labels: list[Any]) -> tuple[list[str], dict[Any, int]]:
    """Integer labels are kept (num_labels = max + 1); names are numbered in sorted order."""
    try:
        as_ints = {label: int(str(label).strip()) for label in labels}
    except ValueError:
        names = sorted({str(label) for label in labels})
        index = {name: i for i, name in enumerate(names)}
        return names, {label: index[str(label)] for label in labels}
    if any(value < 0 for value in as_ints.values()):
        raise HpoError("data.label_column: integer labels must be >= 0")
    n_labels = max(as_ints.values(), default=-1) + 1
    return [str(i) for i in range(n_labels)], as_ints


def _regression_arrays(
    data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows
) -> tuple[Arrays, dict[str, Any]]:
    arrays: Arrays = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        texts = [text for text, _ in rows]
        _padded_texts(arrays, _source_keys(split), texts, tokenizer, data.block_size)
        arrays[f"{split}_labels"] = np.array(
            [_float_label(label, data) for _, label in rows], np.float32
        )
    return arrays, {"num_labels": 1}


def _float_label(label: Any, data: DataSpec) -> float:
    try:
        value = float(str(label).strip()) if not isinstance(label, (int, float)) else float(label)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise HpoError(
            f"data.label_column {data.label_column!r}: found {label!r}; task regression needs "
            "a finite number in every row"
        )
    return value


def _token_classification_arrays(
    data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows
) -> tuple[Arrays, dict[str, Any]]:
    # Sorted names give the same ids in every run whatever the row order; the model config's
    # id2label records them, and the metrics read them back as `label_names`.
    label_names = sorted(
        {tag for _, tags in train_rows + eval_rows for tag in tags}, key=_tag_order
    )
    index = {name: i for i, name in enumerate(label_names)}
    # label_all_tokens: a word's later sub-tokens continue its entity (B-X -> I-X), as run_ner.
    b_to_i = {
        index[name]: index["I-" + name[2:]]
        for name in label_names
        if name.startswith("B-") and "I-" + name[2:] in index
    }
    arrays: Arrays = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        ids, lengths, labels = tokenizer.encode_words(
            [words for words, _ in rows],
            [[index[tag] for tag in tags] for _, tags in rows],
            data.block_size,
            label_all_tokens=data.label_all_tokens,
            b_to_i=b_to_i,
        )
        arrays[f"{split}_input_ids"] = ids.astype(token_dtype(tokenizer.vocab_size))
        arrays[f"{split}_lengths"] = lengths.astype(np.int32)
        arrays[f"{split}_labels"] = labels
    return arrays, {"num_labels": len(label_names), "label_names": label_names}


def _tag_order(tag: str) -> tuple[int, int, str]:
    """Integer tags (a hub dataset's class ids) in numeric order, then names alphabetically."""
    if tag.lstrip("-").isdigit():
        return (0, int(tag), "")
    return (1, 0, tag)


def _seq2seq_arrays(
    data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows
) -> tuple[Arrays, dict[str, Any]]:
    arrays: Arrays = {}
    for split, rows in (("train", train_rows), ("eval", eval_rows)):
        sources = [source for source, _ in rows]
        targets = [target for _, target in rows]
        _padded_texts(arrays, _source_keys(split), sources, tokenizer, data.block_size)
        target_keys = (f"{split}_target_ids", f"{split}_target_lengths")
        _padded_texts(arrays, target_keys, targets, tokenizer, data.block_size)
    return arrays, {}
