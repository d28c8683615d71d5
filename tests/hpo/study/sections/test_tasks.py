"""The task-specific checks of a study file: what each task needs, refused with what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers.study_files import base_study

from hpo.errors import StudyFileError
from hpo.spec import TrainedTokenizerSpec
from hpo.study import load

BERT = {
    "model_type": "bert",
    "vocab_size": 100,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
}
T5 = {"model_type": "t5", "vocab_size": 100, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1}
TRAINED = {"train": "wordpiece", "vocab_size": 100}
LR = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path.name


def task_study(task: str, config: dict, data: dict) -> dict:
    """base_study() for `task` with `config` and `data` (a trained tokenizer unless it says
    otherwise) and a learning-rate space."""
    return {
        **base_study(),
        "model": {"task": task, "config": config},
        "data": {"tokenizer": TRAINED, "block_size": 32, **data},
        "space": LR,
    }


def write_study(tmp_path: Path, study: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def the_problem(tmp_path: Path, study: dict, key: str) -> str:
    """The problem `load` reports at `key` (exit 2)."""
    with pytest.raises(StudyFileError) as caught:
        load(write_study(tmp_path, study))
    assert caught.value.exit_code == 2
    matching = [p for p in caught.value.problems if p.startswith(f"{key}:")]
    assert matching, f"no problem at {key!r} in {caught.value.problems}"
    return matching[0]


@pytest.fixture
def ner_file(tmp_path):
    return write_rows(tmp_path / "ner.jsonl", [{"words": ["Ada", "went"], "ner": ["B-PER", "O"]}])


def test_each_new_task_loads_with_its_columns(tmp_path, ner_file):
    (tmp_path / "pairs.csv").write_text("question,answer\nwhat,that\n")
    (tmp_path / "scores.csv").write_text("review,score\ngood,4.5\n")
    (tmp_path / "text.txt").write_text("some text\n")
    cases = {
        "token-classification": (
            BERT,
            {
                "files": [ner_file],
                "tokens_column": "words",
                "tags_column": "ner",
                "label_all_tokens": True,
            },
        ),
        "seq2seq-lm": (
            T5,
            {"files": ["pairs.csv"], "source_column": "question", "target_column": "answer"},
        ),
        "regression": (
            BERT,
            {
                "files": ["scores.csv"],
                "text_column": "review",
                "label_column": "score",
                "tokenizer": "bytes",
            },
        ),
        "masked-lm": (BERT, {"files": ["text.txt"], "mlm_probability": 0.2}),
    }
    for task, (config, data) in cases.items():
        if data.get("tokenizer") == "bytes":
            config = {**config, "vocab_size": 256}
        spec = load(write_study(tmp_path, task_study(task, config, data)))
        assert spec.model.task == task
    assert spec.data.mlm_probability == 0.2
    assert spec.data.tokenizer == TrainedTokenizerSpec("wordpiece", 100)


def test_a_missing_column_names_the_file_the_column_and_the_key(tmp_path):
    name = write_rows(tmp_path / "ner.jsonl", [{"words": ["Ada"], "tags": ["B-PER"]}])
    problem = the_problem(
        tmp_path, task_study("token-classification", BERT, {"files": [name]}), "data.files"
    )
    assert "ner.jsonl has no column 'tokens'" in problem
    assert "['tags', 'words']" in problem and "data.tokens_column" in problem
    (tmp_path / "s.csv").write_text("text,value\nok,1\n")
    problem = the_problem(
        tmp_path,
        task_study("regression", BERT, {"files": ["s.csv"], "tokenizer": "bytes"}),
        "data.files",
    )
    assert "s.csv has no column 'label'" in problem and "data.label_column" in problem


def test_keys_of_another_task_are_refused(tmp_path, ner_file):
    changes = task_study(
        "token-classification",
        BERT,
        {
            "files": [ner_file],
            "tokens_column": "words",
            "tags_column": "ner",
            "source_column": "src",
            "mlm_probability": 0.3,
        },
    )
    problem = the_problem(tmp_path, changes, "data.source_column")
    assert "task token-classification does not read it (it applies to seq2seq-lm)" in problem
    problem = the_problem(tmp_path, changes, "data.mlm_probability")
    assert "applies to task masked-lm only (this study: token-classification)" in problem


@pytest.mark.parametrize("task", ["masked-lm", "token-classification", "seq2seq-lm"])
def test_tasks_that_need_special_tokens_refuse_bytes(tmp_path, task):
    (tmp_path / "rows.jsonl").write_text(
        json.dumps({"text": "a", "tokens": ["a"], "tags": ["O"], "source": "a", "target": "b"})
        + "\n"
    )
    config = {**(T5 if task == "seq2seq-lm" else BERT), "vocab_size": 256}
    changes = task_study(task, config, {"files": ["rows.jsonl"], "tokenizer": "bytes"})
    problem = the_problem(tmp_path, changes, "data.tokenizer")
    assert f"'bytes' has no special tokens (pad, mask, eos, words), which task {task}" in problem
    assert "{train: wordpiece, vocab_size: 1000}" in problem


def test_trained_tokenizer_keys_and_vocab_against_the_model(tmp_path):
    (tmp_path / "t.txt").write_text("text\n")
    base = task_study("masked-lm", BERT, {"files": ["t.txt"]})
    problem = the_problem(
        tmp_path,
        {**base, "data": {**base["data"], "tokenizer": {"train": "unigram", "vocab_size": 50}}},
        "data.tokenizer.train",
    )
    assert "found 'unigram'" in problem and "wordpiece, bpe" in problem
    problem = the_problem(
        tmp_path,
        {**base, "data": {**base["data"], "tokenizer": {"train": "bpe"}}},
        "data.tokenizer.vocab_size",
    )
    assert "missing" in problem
    problem = the_problem(
        tmp_path,
        {**base, "data": {**base["data"], "tokenizer": {"train": "bpe", "vocab_size": 500}}},
        "data.tokenizer.vocab_size",
    )
    assert "found 500, but model.config.vocab_size is 100; expected <= 100" in problem


def test_a_model_type_without_the_task_head_is_refused_briefly(tmp_path):
    (tmp_path / "t.txt").write_text("text\n")
    problem = the_problem(
        tmp_path, task_study("masked-lm", {**T5}, {"files": ["t.txt"]}), "model.config"
    )
    assert "t5 has no AutoModelForMaskedLM model" in problem and "bert" in problem
    assert len(problem) < 300


def test_txt_files_and_num_labels_only_where_they_apply(tmp_path):
    (tmp_path / "t.txt").write_text("text\n")
    problem = the_problem(
        tmp_path, task_study("seq2seq-lm", T5, {"files": ["t.txt"]}), "data.files[0]"
    )
    assert "task seq2seq-lm reads rows, not text" in problem
    (tmp_path / "s.csv").write_text("text,label\nok,1\n")
    changes = task_study("regression", BERT, {"files": ["s.csv"], "tokenizer": "bytes"})
    changes["model"]["num_labels"] = 3
    changes["model"]["config"] = {**BERT, "vocab_size": 256}
    problem = the_problem(tmp_path, changes, "model.num_labels")
    assert "regression has one output" in problem


def test_mlm_probability_is_searchable_for_masked_lm_only(tmp_path, ner_file):
    (tmp_path / "t.txt").write_text("text\n")
    masking = {"data.mlm_probability": {"type": "float", "low": 0.1, "high": 0.3}}
    changes = task_study("masked-lm", BERT, {"files": ["t.txt"]})
    spec = load(write_study(tmp_path, {**changes, "space": {**LR, **masking}}))
    assert [p.name for p in spec.space] == ["learning_rate", "data.mlm_probability"]
    wide = {"data.mlm_probability": {"type": "float", "low": 0.1, "high": 1.5}}
    problem = the_problem(tmp_path, {**changes, "space": wide}, "space.data.mlm_probability")
    assert "expected a float range (or choices) inside (0, 1)" in problem
    other = {"data.block_size": {"type": "int", "low": 8, "high": 16}}
    problem = the_problem(tmp_path, {**changes, "space": other}, "space.data.block_size")
    assert "not a searchable data setting; expected data.mlm_probability" in problem
    changes = task_study(
        "token-classification",
        BERT,
        {"files": [ner_file], "tokens_column": "words", "tags_column": "ner"},
    )
    problem = the_problem(
        tmp_path, {**changes, "space": {**LR, **masking}}, "space.data.mlm_probability"
    )
    assert "applies to task masked-lm only (this study: token-classification)" in problem
