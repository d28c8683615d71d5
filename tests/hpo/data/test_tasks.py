"""The data of each task, from files to the batch the model takes: real tokenizers trained on
the spot, real tiny models, real Transformers collators."""

from __future__ import annotations

import csv
import json

import numpy as np
import optuna
import pytest
import torch
from helpers.study_files import study_spec

from hpo.data import describe_data, load_datasets, study_collator, study_model_init
from hpo.data.cache import prepare_data_cache
from hpo.errors import HpoError
from hpo.spec import DataSpec, ModelSpec, TrainedTokenizerSpec

BERT = {
    "model_type": "bert",
    "vocab_size": 120,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
}
T5 = {"model_type": "t5", "vocab_size": 120, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1}
WORDPIECE = TrainedTokenizerSpec("wordpiece", vocab_size=120)
# The alphabet and little more: words split into several word pieces.
CHARACTERS = TrainedTokenizerSpec("wordpiece", vocab_size=16)
NAMES = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
PLACES = ["Paris", "Helsinki", "Vienna"]


def ner_rows() -> list[dict]:
    rows = []
    for i in range(40):
        first, last = NAMES[i % len(NAMES)].split()
        place = PLACES[i % len(PLACES)]
        rows.append(
            {
                "tokens": [first, last, "visited", place, "."],
                "tags": ["B-PER", "I-PER", "O", "B-LOC", "O"],
            }
        )
    return rows


def ner_spec(tmp_path, **data):
    return spec_of(
        tmp_path, "token-classification", BERT, tokenizer=CHARACTERS, **{"block_size": 48, **data}
    )


def spec_of(tmp_path, task, config, out="run", **data):
    return study_spec(
        tmp_path,
        name="t",
        model=ModelSpec(task=task, config=config),
        data=DataSpec(**{"tokenizer": WORDPIECE, "block_size": 24, **data}),
        training={"output_dir": str(tmp_path / out)},
    )


def write_ner_jsonl(tmp_path) -> str:
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ner_rows()))
    return str(path)


def labelled_positions(dataset) -> list[list[int]]:
    batch = dataset.get_batch(range(len(dataset)))
    return [[int(v) for v in row if v != -100] for row in batch["labels"]]


def test_word_tags_go_to_first_sub_tokens_and_names_reach_the_config(tmp_path):
    spec = ner_spec(tmp_path, files=(write_ner_jsonl(tmp_path),))
    train, evaluation = load_datasets(spec)
    names = ["B-LOC", "B-PER", "I-PER", "O"]
    assert train.label_names == evaluation.label_names == names
    assert describe_data(spec)["label_names"] == names
    batch = train.get_batch(range(len(train)))
    tokens = batch["input_ids"]
    # The words do split: more sub-tokens than words plus [CLS] and [SEP].
    assert int(batch["attention_mask"].sum(1).min()) > 5 + 2
    # One label per word, in word order: B-PER I-PER O B-LOC O.
    expected = [names.index(t) for t in ner_rows()[0]["tags"]]
    assert all(row == expected for row in labelled_positions(train))
    # [CLS], [SEP] and padding are ignored.
    labels = batch["labels"]
    assert (labels[:, 0] == -100).all()
    assert (labels[batch["attention_mask"] == 0] == -100).all()
    model = study_model_init(spec)()
    assert model.config.id2label == dict(enumerate(names))
    assert model.config.num_labels == 4
    output = model(**train.get_batch([0, 1]))
    assert output.logits.shape == (2, 48, 4) and torch.isfinite(output.loss)
    assert tokens.shape == (len(train), 48)


def test_label_all_tokens_labels_every_sub_token_continuing_entities(tmp_path):
    path = write_ner_jsonl(tmp_path)
    first = ner_spec(tmp_path, files=(path,))
    every = ner_spec(tmp_path, files=(path,), label_all_tokens=True)
    train_first, _ = load_datasets(first)
    train_every, _ = load_datasets(every)
    names = train_every.label_names
    batch = train_every.get_batch(range(len(train_every)))
    real = batch["attention_mask"].sum(1) - 2  # every token but [CLS] and [SEP]
    assert [len(row) for row in labelled_positions(train_every)] == real.tolist()
    for row_first, row_every in zip(
        labelled_positions(train_first), labelled_positions(train_every), strict=True
    ):
        assert len(row_every) > len(row_first)
        # B-PER (which has an I-PER) only where the name starts: the later pieces continue it;
        # B-LOC has no I-LOC to continue with, so it stays (as in Transformers' run_ner)
        begin = names.index("B-PER")
        assert row_every.count(begin) == row_first.count(begin) == 1
        assert row_every.count(names.index("B-LOC")) > 1


def test_csv_words_and_tags_as_space_separated_cells_give_the_same_rows(tmp_path):
    path = tmp_path / "ner.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "labels"])
        for row in ner_rows():
            writer.writerow([" ".join(row["tokens"]), " ".join(row["tags"])])
    from_jsonl = ner_spec(tmp_path, files=(write_ner_jsonl(tmp_path),))
    from_csv = ner_spec(
        tmp_path,
        files=(str(path),),
        tokens_column="sentence",
        tags_column="labels",
    )
    a, _ = load_datasets(from_jsonl)
    b, _ = load_datasets(from_csv)
    assert torch.equal(a.get_batch(range(len(a)))["labels"], b.get_batch(range(len(b)))["labels"])


def test_words_and_tags_of_different_lengths_are_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n")
    spec = ner_spec(tmp_path, files=(str(path),))
    with pytest.raises(HpoError, match="row 1: 2 words in 'tokens' but 1 tags in 'tags'"):
        load_datasets(spec)


def test_regression_reads_float_labels_and_trains_on_mse(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("review,score\n" + "".join(f"text number {i},{i / 10}\n" for i in range(30)))
    spec = spec_of(
        tmp_path,
        "regression",
        {**BERT, "vocab_size": 256},
        files=(str(path),),
        tokenizer="bytes",
        text_column="review",
        label_column="score",
    )
    train, evaluation = load_datasets(spec)
    assert len(train) + len(evaluation) == 30
    assert train.label_names is None
    batch = train.get_batch(range(len(train)))
    assert batch["labels"].dtype == torch.float32
    assert sorted(np.round(batch["labels"].numpy(), 4).tolist()) != []
    assert set(np.round(batch["labels"].numpy() * 10).astype(int)) <= set(range(30))
    model = study_model_init(spec)()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    output = model(**batch)
    mse = torch.nn.functional.mse_loss(output.logits.squeeze(-1), batch["labels"])
    assert torch.allclose(output.loss, mse)


def test_regression_refuses_a_label_that_is_not_a_number(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("text,label\nfine,3.5\nbad,high\n")
    spec = spec_of(tmp_path, "regression", BERT, files=(str(path),), tokenizer="bytes")
    with pytest.raises(HpoError, match="found 'high'; task regression needs a finite number"):
        load_datasets(spec)


def masked_share(collator, train) -> float:
    """The share of maskable tokens (not special) that one collated pass chose for the loss."""
    batch = collator(train.__getitems__(list(range(len(train)))))
    special = torch.isin(batch["input_ids"], torch.tensor([1, 2, 3]))  # [UNK] [CLS] [SEP]
    chosen = batch["labels"] != -100
    return float(chosen.sum()) / float((~special).sum())


def test_mlm_probability_reaches_the_collator_per_trial(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"word{i % 37} and more text" for i in range(3000)))
    spec = spec_of(tmp_path, "masked-lm", BERT, files=(str(text),), mlm_probability=0.15)
    train, _ = load_datasets(spec)
    collator = study_collator(spec)
    model_init = study_model_init(spec, collator)
    torch.manual_seed(0)
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("data.mlm_probability", 0.5, 0.5 + 1e-9)
    model = model_init(trial)  # an optuna trial, as the Optuna backend passes it
    assert 0.45 < masked_share(collator, train) < 0.55
    model_init({"data.mlm_probability": 0.3})  # a Ray config dict
    assert 0.25 < masked_share(collator, train) < 0.35
    model_init(None)  # a trial without it: back to the study's value
    assert 0.11 < masked_share(collator, train) < 0.19
    output = model(**collator(train.__getitems__([0, 1, 2])))
    assert torch.isfinite(output.loss)


def test_seq2seq_items_are_unpadded_and_the_collator_pads_labels_with_minus_100(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"source": "one two " * (1 + i % 3), "target": "1 2 " * (1 + i % 3)} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = spec_of(tmp_path, "seq2seq-lm", T5, files=(str(path),))
    train, _ = load_datasets(spec)
    items = train.__getitems__([0, 1, 2])
    assert len({len(item["input_ids"]) for item in items}) > 1  # unpadded, lengths differ
    collator = study_collator(spec)
    batch = collator(items)
    longest = max(len(item["labels"]) for item in items)
    assert batch["labels"].shape == (3, longest)
    shortest = min(range(3), key=lambda i: len(items[i]["labels"]))
    assert (batch["labels"][shortest, len(items[shortest]["labels"]) :] == -100).all()
    model = study_model_init(spec, collator)()
    assert model.config.decoder_start_token_id == model.config.pad_token_id == 0
    assert torch.isfinite(model(**batch).loss)
    # get_batch pads the same way (the evaluation of a fixed batch)
    fixed = train.get_batch([0, 1, 2])
    assert (fixed["labels"][shortest, len(items[shortest]["labels"]) :] == -100).all()


def test_the_trained_tokenizer_is_cached_with_the_data(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("alpha beta gamma delta " * 200)
    spec = spec_of(tmp_path, "masked-lm", BERT, files=(str(path),))
    cache = prepare_data_cache(spec)
    saved = cache / "tokenizer" / "tokenizer.json"
    assert saved.is_file()
    stamp = saved.stat().st_mtime_ns
    assert prepare_data_cache(spec) == cache and saved.stat().st_mtime_ns == stamp
    summary = describe_data(spec)
    assert summary["vocab_size"] <= 120 and summary["special_token_ids"]["mask_token_id"] == 4
    bpe = spec_of(
        tmp_path, "masked-lm", BERT, files=(str(path),), tokenizer=TrainedTokenizerSpec("bpe", 60)
    )
    assert prepare_data_cache(bpe) != cache


def test_a_masking_task_with_the_bytes_tokenizer_stops_with_what_to_do(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("alpha beta " * 200)
    spec = spec_of(
        tmp_path, "masked-lm", {**BERT, "vocab_size": 256}, files=(str(path),), tokenizer="bytes"
    )
    with pytest.raises(HpoError, match=r"needs a Transformers tokenizer .*not 'bytes'"):
        study_collator(spec)


def test_integer_tags_keep_their_numeric_order(tmp_path):
    path = tmp_path / "ids.jsonl"
    rows = [{"tokens": ["a", "b", "c"], "tags": [0, 10, 2]}] * 4
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, _ = load_datasets(ner_spec(tmp_path, files=(str(path),)))
    assert train.label_names == ["0", "2", "10"]
    assert labelled_positions(train)[0] == [0, 2, 1]


def test_masked_lm_evaluations_score_the_same_masks_whatever_the_trial_trains_with(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"word{i % 37} and more text" for i in range(3000)))
    spec = spec_of(tmp_path, "masked-lm", BERT, files=(str(text),), mlm_probability=0.15)
    _, evaluation = load_datasets(spec)
    collator = study_collator(spec)
    model_init = study_model_init(spec, collator)
    model_init({"data.mlm_probability": 0.5})  # the trial trains with half the tokens masked
    rows = list(range(len(evaluation)))
    first = collator(evaluation.__getitems__(rows))
    again = collator(evaluation.__getitems__(rows))
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert torch.equal(first["labels"], again["labels"])
    assert 0.08 < masked_share(collator, evaluation) < 0.22  # the study's 0.15, not 0.5
    masked = first["labels"] != -100
    originals = np.asarray(evaluation.get_batch(rows)["labels"])[masked.numpy()]
    assert (first["labels"][masked].numpy() == originals).all()
    assert int((first["input_ids"][masked] == 4).sum()) > 0.6 * int(masked.sum())  # [MASK]
    other = spec_of(tmp_path, "masked-lm", BERT, files=(str(text),), mlm_probability=0.3)
    assert prepare_data_cache(other) != prepare_data_cache(spec)
