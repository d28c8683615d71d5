"""hpo.data.sources: rows from .jsonl / .csv files, the built-in corpus, the hub; clear errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from helpers.data_study import all_rows, study, text_of, write_jsonl

from hpo.data.cache import describe_data, load_datasets
from hpo.errors import HpoError


def test_pydoc_topics_corpus_needs_no_files(tmp_path):
    from pydoc_data.topics import topics

    train, evals = load_datasets(study(tmp_path, corpus="pydoc-topics", block_size=64))
    n_bytes = len("\n".join(topics[k] for k in sorted(topics)).encode("utf-8"))
    assert len(train) + len(evals) == n_bytes // 64
    assert len(evals) == round((n_bytes // 64) * 0.1)
    text = b"".join(bytes(row) for row in all_rows(train)[:50].astype(np.uint8))
    assert topics[sorted(topics)[0]].encode()[:64] in text


def test_jsonl_rows_give_padded_ids_mask_and_labels(tmp_path):
    train_file = write_jsonl(
        tmp_path / "train.jsonl",
        [{"text": "good film", "label": 1}, {"text": "a very long and boring film", "label": 0}],
    )
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [{"text": "bad", "label": 0}])
    spec = study(
        tmp_path,
        task="sequence-classification",
        files=(train_file,),
        eval_files=(eval_file,),
        block_size=12,
    )
    train, evals = load_datasets(spec)
    short, long = train[0], train[1]
    assert set(short) == {"input_ids", "attention_mask", "labels"}
    assert text_of(short["input_ids"][:9]) == "good film"
    assert short["input_ids"][9:].tolist() == [0, 0, 0]  # padded with 0
    assert short["attention_mask"].tolist() == [1] * 9 + [0] * 3
    assert text_of(long["input_ids"]) == "a very long "  # truncated to block_size
    assert long["attention_mask"].tolist() == [1] * 12
    assert short["labels"].item() == 1 and long["labels"].item() == 0
    assert len(evals) == 1 and evals[0]["labels"].item() == 0
    summary = describe_data(spec)
    assert summary["num_labels"] == 2 and summary["n_train"] == 2 and summary["n_eval"] == 1


def test_csv_rows_with_named_labels_and_custom_columns(tmp_path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for i in range(20):
            writer.writerow([f"review number {i}", ["neg", "pos", "neutral"][i % 3]])
    spec = study(
        tmp_path,
        task="sequence-classification",
        files=(str(path),),
        text_column="review",
        label_column="sentiment",
        block_size=16,
        eval_fraction=0.2,
    )
    train, evals = load_datasets(spec)
    assert len(train) == 16 and len(evals) == 4
    summary = describe_data(spec)
    assert summary["label_names"] == ["neg", "neutral", "pos"]  # numbered in sorted order
    names = summary["label_names"]
    for dataset in (train, evals):
        for i in range(len(dataset)):
            item = dataset[i]
            number = int(
                text_of(item["input_ids"][: int(item["attention_mask"].sum())]).split()[-1]
            )
            assert names[item["labels"].item()] == ["neg", "pos", "neutral"][number % 3]


def test_row_without_the_column_names_the_file_row_and_column(tmp_path):
    bad = write_jsonl(
        tmp_path / "bad.jsonl", [{"text": "x", "label": 0}, {"body": "y", "label": 1}]
    )
    spec = study(tmp_path, task="sequence-classification", files=(bad,))
    with pytest.raises(
        HpoError, match=r"bad.jsonl'.*row 2 has no column 'text'.*\['body', 'label'\]"
    ):
        load_datasets(spec)
    (tmp_path / "plain.txt").write_text("words")
    spec = study(tmp_path, task="sequence-classification", files=(str(tmp_path / "plain.txt"),))
    with pytest.raises(HpoError, match="sequence-classification needs .jsonl or .csv"):
        load_datasets(spec)


def test_unknown_corpus_and_hub_without_datasets_are_clear_errors(tmp_path):
    with pytest.raises(HpoError, match="'wikitext' is not a built-in corpus.*pydoc-topics"):
        load_datasets(study(tmp_path, corpus="wikitext"))
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(HpoError, match="needs the `datasets` package.*pip install datasets"):
            load_datasets(study(tmp_path, hub="stanfordnlp/imdb"))
