"""Where a study's rows come from: local files, the built-in corpus, the hub, or a factory.

Rows are what the tokenizer reads, per task (`row_columns`): for causal-lm and masked-lm one
text per document; for sequence-classification and regression a (text, label) pair; for
token-classification a (words, tags) pair of equal-length lists (from a .jsonl row's lists, or
a .csv row's space-separated words and tags); for seq2seq-lm a (source, target) pair. Local
`files` are .txt (one document each, plain-text tasks only), .jsonl (a JSON object per line) or
.csv (a header row); `eval_files` give the eval rows, otherwise the cache holds out
`eval_fraction` of the train rows.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.data.factory import load_factory
from hpo.errors import HpoError
from hpo.spec import BUILTIN_CORPORA, DATA_FILE_SUFFIXES, TEXT_TASKS, DataSpec

Rows = list[Any]  # plain-text tasks: list[str] documents; the others: list[tuple] (row_columns)


def row_columns(data: DataSpec, task: str) -> list[tuple[str, str]]:
    """The (column, data key naming it) a row of `task` is read from, in row order."""
    if task in TEXT_TASKS:
        return [(data.text_column, "data.text_column")]
    if task == "token-classification":
        return [(data.tokens_column, "data.tokens_column"), (data.tags_column, "data.tags_column")]
    if task == "seq2seq-lm":
        return [
            (data.source_column, "data.source_column"),
            (data.target_column, "data.target_column"),
        ]
    return [(data.text_column, "data.text_column"), (data.label_column, "data.label_column")]


def read_rows(data: DataSpec, task: str) -> tuple[Rows, Rows | None]:
    """Train rows and eval rows (None: hold out data.eval_fraction) from the spec's source."""
    if data.factory:
        return _factory_rows(data, task)
    if data.corpus:
        return _corpus_rows(data.corpus, task), None
    if data.hub:
        return _hub_rows(data, task)
    if not data.files:
        raise HpoError("data: no source; give files, corpus, hub or factory")
    train = [row for path in data.files for row in _file_rows(path, data, task, "data.files")]
    if not data.eval_files:
        return train, None
    evals = [
        row for path in data.eval_files for row in _file_rows(path, data, task, "data.eval_files")
    ]
    return train, evals


def _file_rows(path: str, data: DataSpec, task: str, key: str) -> Rows:
    file = Path(path)
    if not file.is_file():
        raise HpoError(f"{key}: {path!r} does not exist (relative paths start at {os.getcwd()})")
    suffix = file.suffix.lower()
    if suffix == ".txt":
        if task not in TEXT_TASKS:
            names = " and ".join(repr(c) for c, _ in row_columns(data, task))
            raise HpoError(
                f"{key}: {path!r}: {task} needs .jsonl or .csv rows with {names} columns"
            )
        return [file.read_text(encoding="utf-8")]
    if suffix == ".jsonl":
        records = [
            _parse_json_line(line, path, number)
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1)
            if line.strip()
        ]
    elif suffix == ".csv":
        with open(file, newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
    else:
        raise HpoError(
            f"{key}: {path!r}: unsupported file type; expected one of {DATA_FILE_SUFFIXES}"
        )
    return _records_to_rows(records, data, task, f"{key}: {path!r}")


def _parse_json_line(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise HpoError(f"data: {path}:{number}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise HpoError(f"data: {path}:{number}: expected a JSON object per line")
    return record


def _records_to_rows(records: Sequence[Any], data: DataSpec, task: str, where: str) -> Rows:
    columns = row_columns(data, task)
    rows: Rows = []
    for number, record in enumerate(records, 1):
        if isinstance(record, str) and task in TEXT_TASKS:
            rows.append(record)
            continue
        missing = [(c, k) for c, k in columns if not isinstance(record, Mapping) or c not in record]
        if missing:
            found = sorted(record) if isinstance(record, Mapping) else type(record).__name__
            keys = " / ".join(k for _, k in columns)
            raise HpoError(
                f"{where}: row {number} has no column {missing[0][0]!r} (found {found}); set {keys}"
            )
        if task in TEXT_TASKS:
            rows.append(str(record[columns[0][0]]))
        elif task == "token-classification":
            rows.append(_words_and_tags(record, columns, f"{where}: row {number}"))
        elif task == "seq2seq-lm":
            rows.append((str(record[columns[0][0]]), str(record[columns[1][0]])))
        else:
            rows.append((str(record[columns[0][0]]), record[columns[1][0]]))
    return rows


def _words_and_tags(
    record: Mapping[str, Any], columns: list[tuple[str, str]], where: str
) -> tuple[list[str], list[str]]:
    """A row's words and tags: JSON lists, or space-separated text (a CSV cell)."""
    pair = []
    for column, _ in columns:
        value = record[column]
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, (list, tuple)) or not value:
            raise HpoError(
                f"{where}: column {column!r} is {value!r}; expected a non-empty list "
                "(or space-separated text in a CSV cell)"
            )
        pair.append([str(item) for item in value])
    words, tags = pair
    if len(words) != len(tags):
        raise HpoError(
            f"{where}: {len(words)} words in {columns[0][0]!r} but {len(tags)} tags in "
            f"{columns[1][0]!r}; expected one tag per word"
        )
    return words, tags


def _corpus_rows(name: str, task: str) -> Rows:
    if name != "pydoc-topics":
        raise HpoError(
            f"data.corpus: {name!r} is not a built-in corpus; expected one of {BUILTIN_CORPORA}"
        )
    if task not in TEXT_TASKS:
        raise HpoError(f"data.corpus: {name!r} is plain text, for tasks {TEXT_TASKS} only")
    from pydoc_data.topics import topics  # ships with CPython: the offline quickstart corpus

    return [topics[key] for key in sorted(topics)]


def _hub_rows(data: DataSpec, task: str) -> tuple[Rows, Rows | None]:
    try:
        import datasets
    except ImportError:
        raise HpoError(
            f"data.hub: {data.hub!r} needs the `datasets` package, which is not installed; "
            "run `pip install datasets`, or use data.files or data.corpus"
        ) from None
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise HpoError(f"data.hub: {data.hub!r}: the hub is offline here (HF_*_OFFLINE=1)")
    try:
        loaded = datasets.load_dataset(data.hub)
    except Exception as error:  # network, unknown id, gated: all the user's to fix
        raise HpoError(f"data.hub: {data.hub!r} could not be loaded: {error}") from error
    eval_split = next((s for s in ("validation", "test") if s in loaded), None)
    train = _records_to_rows(loaded["train"], data, task, f"data.hub: {data.hub!r} train")
    if eval_split is None:
        return train, None
    where = f"data.hub: {data.hub!r} {eval_split}"
    return train, _records_to_rows(loaded[eval_split], data, task, where)


def _call_data_factory(data: DataSpec) -> tuple[Any, Any]:
    """The factory is called with no arguments and returns raw rows (texts, or dicts with the
    text and label columns) for train and eval (None: hold out eval_fraction); they are
    tokenized and cached like file rows, so it runs once per study, not per worker."""
    result = load_factory(str(data.factory), "data.factory")()
    if not (isinstance(result, tuple) and len(result) == 2):
        raise HpoError(
            f"data.factory: {data.factory!r} returned {type(result).__name__}; "
            "expected a pair (train, eval), eval may be None"
        )
    return result


def _factory_rows(data: DataSpec, task: str) -> tuple[Rows, Rows | None]:
    train, evals = _call_data_factory(data)
    where = f"data.factory: {data.factory!r}"
    rows = _records_to_rows(list(train), data, task, f"{where} train")
    if evals is None:
        return rows, None
    return rows, _records_to_rows(list(evals), data, task, f"{where} eval")
