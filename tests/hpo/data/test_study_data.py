"""hpo.data: the study's model and data together, as the objective uses them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.study_files import study_spec, tiny_gpt2_config

from hpo.data import describe_data, load_datasets, study_model_init
from hpo.errors import HpoError
from hpo.spec import DataSpec, ModelSpec, StudySpec

TINY_GPT2 = tiny_gpt2_config()


def study(tmp_path: Path, model: ModelSpec, data: DataSpec) -> StudySpec:
    return study_spec(tmp_path, name="s", model=model, data=data)


def test_quickstart_pair_gpt2_on_pydoc_topics_learns(tmp_path):
    spec = study(
        tmp_path,
        ModelSpec(config=TINY_GPT2),
        DataSpec(corpus="pydoc-topics", block_size=64, max_eval_samples=16),
    )
    train, evals = load_datasets(spec)
    torch.manual_seed(0)
    model = study_model_init(spec)({"model.n_layer": 1})
    assert model.config.n_layer == 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    eval_batch = evals.get_batch(range(len(evals)))
    with torch.no_grad():
        before = model(**eval_batch).loss.item()
    assert math.isclose(before, math.log(256), rel_tol=0.1)  # untrained: near uniform
    for step in range(12):
        loss = model(**train.get_batch(range(step * 8, step * 8 + 8))).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        assert model(**eval_batch).loss.item() < before - 1.0


def test_classification_labels_and_padding_reach_the_model(tmp_path):
    rows = [
        {"text": f"{word} {i}", "label": word}
        for i in range(12)
        for word in ("red", "green", "blue")
    ]
    path = tmp_path / "colours.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = study(
        tmp_path,
        ModelSpec(task="sequence-classification", config=TINY_GPT2),
        DataSpec(files=(str(path),), block_size=16),
    )
    assert describe_data(spec)["num_labels"] == 3
    model = study_model_init(spec)()
    assert model.config.num_labels == 3 and model.config.pad_token_id == 0
    train, _ = load_datasets(spec)
    out = model(**train.get_batch(range(6)))
    assert out.logits.shape == (6, 3) and torch.isfinite(out.loss)


def test_model_smaller_than_the_data_fails_before_any_trial(tmp_path):
    data = DataSpec(corpus="pydoc-topics", block_size=32)
    small_vocab = study(tmp_path, ModelSpec(config={**TINY_GPT2, "vocab_size": 128}), data)
    with pytest.raises(
        HpoError, match="vocab_size: 128 is smaller than the tokenizer's vocabulary \\(256"
    ):
        study_model_init(small_vocab)
    path = tmp_path / "three.jsonl"
    path.write_text("".join(json.dumps({"text": "x", "label": i % 3}) + "\n" for i in range(9)))
    two_labels = study(
        tmp_path,
        ModelSpec(task="sequence-classification", config=TINY_GPT2, num_labels=2),
        DataSpec(files=(str(path),), block_size=8),
    )
    with pytest.raises(HpoError, match="num_labels: 2 is fewer than the 3 labels"):
        study_model_init(two_labels)


def test_importing_sources_loads_neither_torch_nor_transformers():
    code = "import sys, hpo.data; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
