"""The `data` section: one source, its files, the tokenizer, and whether the model fits it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.spec import (
    BUILTIN_CORPORA,
    BYTES_TOKENIZER,
    DATA_FILE_SUFFIXES,
    TEXT_TASKS,
    DataSpec,
    ModelSpec,
)
from hpo.study.keys import DATA_KEYS, DATA_SOURCES
from hpo.study.reader import Reader, is_int
from hpo.study.references import read_factory, read_local_or_hub
from hpo.study.sections.model import BuiltModel
from hpo.study.sections.tasks import (
    check_file_columns,
    check_trained_vocab,
    read_task_keys,
    read_tokenizer,
)


def read_data(reader: Reader, model: ModelSpec, built: BuiltModel) -> DataSpec:
    """Exactly one source (files, corpus, hub or factory) and how it is tokenized and split."""
    problems = reader.problems
    section = reader.mapping("data", required=True)
    problems.unknown_keys(section, DATA_KEYS, "data")
    problems.exactly_one_of(section, DATA_SOURCES, "data")
    files = _files(reader, section.get("files"), "data.files", model.task)
    eval_files = _files(reader, section.get("eval_files"), "data.eval_files", model.task)
    if eval_files and not files:
        problems.add("data.eval_files", "given without data.files; expected them with files only")
    corpus = section.get("corpus")
    if corpus is not None:
        corpus = reader.choice(corpus, "data.corpus", BUILTIN_CORPORA)
        if model.task not in TEXT_TASKS:
            problems.add(
                "data.corpus",
                f"{corpus!r} is plain text; it serves tasks {', '.join(TEXT_TASKS)} only",
            )
    hub = reader.text(section.get("hub"), "data.hub", "a datasets hub id")
    if hub is not None:
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            problems.add(
                "data.hub",
                f"found {hub!r}, but the `datasets` package is not installed (pip install datasets)",
            )
    factory_ref = read_factory(reader, section.get("factory"), "data.factory")
    tokenizer = section.get("tokenizer", BYTES_TOKENIZER)
    trained = read_tokenizer(reader, section.get("tokenizer"), model.task)
    if trained is not None:
        tokenizer = trained
    elif tokenizer != BYTES_TOKENIZER:
        tokenizer = (
            read_local_or_hub(reader, tokenizer, "data.tokenizer", "a tokenizer") or BYTES_TOKENIZER
        )
    block_size = reader.integer(
        section.get("block_size"), "data.block_size", minimum=2, default=128
    )
    eval_fraction = reader.number(
        section.get("eval_fraction"),
        "data.eval_fraction",
        "a number between 0 and 1 (exclusive)",
        lambda v: 0 < v < 1,
    )
    max_eval = reader.integer(section.get("max_eval_samples"), "data.max_eval_samples", minimum=1)
    task_data = read_task_keys(reader, section, model.task)
    check_file_columns(reader, files, "data.files", model.task, task_data.columns)
    check_file_columns(reader, eval_files, "data.eval_files", model.task, task_data.columns)
    _check_model_fits_data(reader, built, tokenizer, block_size)
    check_trained_vocab(reader, built, tokenizer)
    return DataSpec(
        files=tuple(files),
        eval_files=tuple(eval_files),
        corpus=corpus,
        hub=hub,
        factory=factory_ref,
        tokenizer=tokenizer,
        # None only with a problem recorded, and then the study is refused, not run.
        block_size=block_size,  # type: ignore[arg-type]
        eval_fraction=0.1 if eval_fraction is None else float(eval_fraction),
        max_eval_samples=max_eval,
        label_all_tokens=task_data.label_all_tokens,
        mlm_probability=task_data.mlm_probability,
        **task_data.columns,
    )


def _files(reader: Reader, value: Any, path: str, task: str) -> list[str]:
    """Existing files of a readable kind for the task, as absolute paths."""
    problems = reader.problems
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        problems.found(path, value, "a file path or a non-empty list of them")
        return []
    found: list[str] = []
    for index, item in enumerate(values):
        where = path if isinstance(value, str) else f"{path}[{index}]"
        if not isinstance(item, str) or not item.strip():
            problems.found(where, item, "a file path")
            continue
        file = Path(item).expanduser()
        suffix = file.suffix.lower()
        if suffix not in DATA_FILE_SUFFIXES:
            problems.found(where, item, f"a file ending in {', '.join(DATA_FILE_SUFFIXES)}")
        elif suffix == ".txt" and task not in TEXT_TASKS:
            problems.found(
                where,
                item,
                f"a .jsonl or .csv file with named columns (task {task} reads rows, not text)",
            )
        if not file.is_file():
            state = "is a directory" if file.is_dir() else "does not exist"
            problems.add(
                where,
                f"found {item!r}, but {file.absolute()} {state}; expected an existing file",
            )
            continue
        found.append(str(file.absolute()))
    return found


def _check_model_fits_data(
    reader: Reader, built: BuiltModel, tokenizer: Any, block_size: int | None
) -> None:
    """The bytes tokenizer needs 256 tokens; a block must fit the model's positions."""
    config = built.config
    if config is None:
        return
    vocab = getattr(config, "vocab_size", None)
    if tokenizer == BYTES_TOKENIZER and is_int(vocab) and vocab < 256:
        reader.problems.add(
            "model.config.vocab_size", f"found {vocab}; the bytes tokenizer needs >= 256"
        )
    positions = getattr(config, "max_position_embeddings", None)
    if block_size and is_int(positions) and block_size > positions:
        reader.problems.add(
            "data.block_size",
            f"found {block_size}, but the model has {positions} positions; expected <= {positions}",
        )
