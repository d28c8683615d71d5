"""hpo.data.cache: tokenized once per study (blocks, held-out split), cached, memory-mapped."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.data_study import all_rows, study, text_of
from torch.utils.data import DataLoader

from hpo.data.cache import cache_key, describe_data, load_datasets, prepare_data_cache
from hpo.errors import HpoError
from hpo.spec import StudySpec

REPO = Path(__file__).resolve().parents[3]


def test_text_files_are_concatenated_and_cut_into_blocks(tmp_path):
    (tmp_path / "a.txt").write_text("abcdefgh")
    (tmp_path / "b.txt").write_text("ijklmnopqrstu")
    (tmp_path / "valid.txt").write_text("0123456789")
    spec = study(
        tmp_path,
        files=(str(tmp_path / "a.txt"), str(tmp_path / "b.txt")),
        eval_files=(str(tmp_path / "valid.txt"),),
        block_size=4,
    )
    train, evals = load_datasets(spec)
    # "abcdefgh\nijklmnopqrstu" is 22 bytes: 5 blocks of 4, the 2-byte tail dropped
    assert [text_of(train[i]["input_ids"]) for i in range(len(train))] == [
        "abcd",
        "efgh",
        "\nijk",
        "lmno",
        "pqrs",
    ]
    assert [text_of(evals[i]["input_ids"]) for i in range(len(evals))] == ["0123", "4567"]
    item = train[1]
    assert set(item) == {"input_ids", "labels"}
    assert item["input_ids"].dtype == torch.long and item["input_ids"].shape == (4,)
    assert torch.equal(item["labels"], item["input_ids"])


def test_held_out_fraction_is_deterministic_and_disjoint(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(chr(ord("a") + i % 26) + str(i % 10) for i in range(400)))
    splits = []
    for out in ("first", "second"):  # two separate caches: built independently
        train, evals = load_datasets(
            study(tmp_path, out=out, files=(str(corpus),), block_size=8, eval_fraction=0.25)
        )
        splits.append((all_rows(train), all_rows(evals)))
    (train_a, eval_a), (train_b, eval_b) = splits
    assert np.array_equal(train_a, train_b) and np.array_equal(eval_a, eval_b)
    assert len(train_a) == 75 and len(eval_a) == 25  # 800 bytes = 100 blocks
    every_block = np.frombuffer(corpus.read_bytes(), np.uint8).reshape(100, 8)
    together = np.concatenate([train_a, eval_a])
    assert sorted(map(bytes, together.astype(np.uint8))) == sorted(map(bytes, every_block))


def test_max_eval_samples_is_a_fixed_subset_of_the_eval_set(tmp_path):
    full = study(tmp_path, corpus="pydoc-topics", block_size=32)
    subset = study(tmp_path, corpus="pydoc-topics", block_size=32, max_eval_samples=40)
    _, whole = load_datasets(full)
    _, first = load_datasets(subset)
    _, again = load_datasets(subset)
    assert len(first) == 40 and len(whole) > 40
    assert np.array_equal(all_rows(first), all_rows(again))
    whole_rows = {bytes(row) for row in all_rows(whole).astype(np.uint8)}
    assert {bytes(row) for row in all_rows(first).astype(np.uint8)} <= whole_rows
    # the subset is applied when opening: the tokenized cache is shared
    assert prepare_data_cache(full) == prepare_data_cache(subset)
    assert describe_data(subset)["n_eval"] == 40


def test_batches_come_from_getitems_and_pickle_without_tokens(tmp_path):
    train, _ = load_datasets(study(tmp_path, corpus="pydoc-topics", block_size=32))
    items = train.__getitems__([3, 0, 7])
    assert len(items) == 3
    assert all(
        torch.equal(items[k]["input_ids"], train[i]["input_ids"]) for k, i in enumerate([3, 0, 7])
    )
    batch = next(iter(DataLoader(train, batch_size=8, shuffle=False)))
    assert batch["input_ids"].shape == (8, 32) and batch["labels"].dtype == torch.long
    assert torch.equal(batch["input_ids"], train.get_batch(range(8))["input_ids"])
    payload = pickle.dumps(train)
    assert len(payload) < 2_000  # the path, not ~460 KB of tokens
    assert torch.equal(pickle.loads(payload)[5]["input_ids"], train[5]["input_ids"])
    with pytest.raises(IndexError):
        train[len(train)]


def test_too_little_text_for_one_block_is_a_clear_error(tmp_path):
    (tmp_path / "tiny.txt").write_text("short")
    with pytest.raises(HpoError, match="no block of data.block_size=64"):
        load_datasets(study(tmp_path, files=(str(tmp_path / "tiny.txt"),), block_size=64))


@pytest.fixture
def counting_factory(tmp_path, monkeypatch):
    """A data factory that appends a line to calls.log each time it runs."""
    (tmp_path / "my_data.py").write_text(
        textwrap.dedent(
            f"""
            def texts():
                with open({str(tmp_path / "calls.log")!r}, "a") as log:
                    log.write("called\\n")
                train = ["row %d: the quick brown fox" % i for i in range(200)]
                return train, ["held out text " * 20]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{REPO}")
    yield tmp_path / "calls.log"
    sys.modules.pop("my_data", None)


def load_in_subprocess(spec: StudySpec) -> subprocess.Popen:
    """Another process (a worker) loading the same study's data."""
    code = textwrap.dedent(
        f"""
        import pickle, sys
        from hpo.data.cache import load_datasets
        train, evals = load_datasets(pickle.loads({pickle.dumps(spec)!r}))
        print(len(train), len(evals), bytes(train.input_ids[0]).hex())
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_cache_is_built_once_and_reused_by_other_processes(tmp_path, counting_factory):
    spec = study(tmp_path, factory="my_data:texts", block_size=16)
    train, evals = load_datasets(spec)
    assert counting_factory.read_text() == "called\n"
    cache_dir = prepare_data_cache(spec)
    stamps = {f.name: f.stat().st_mtime_ns for f in cache_dir.iterdir()}

    worker = load_in_subprocess(spec)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0
    assert out.split() == [str(len(train)), str(len(evals)), bytes(train.input_ids[0]).hex()]
    assert counting_factory.read_text() == "called\n"  # the worker did not rebuild
    assert {f.name: f.stat().st_mtime_ns for f in cache_dir.iterdir()} == stamps
    assert isinstance(train.input_ids, np.memmap)


def test_racing_workers_tokenize_once_and_leave_no_temp_folders(tmp_path, counting_factory):
    spec = study(tmp_path, factory="my_data:texts", block_size=16)
    workers = [load_in_subprocess(spec) for _ in range(3)]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0]
    assert len(set(outputs)) == 1
    assert counting_factory.read_text() == "called\n"
    cache_root = prepare_data_cache(spec).parent
    assert not [p for p in cache_root.iterdir() if p.name.startswith(".tmp")]


def test_changed_file_gets_a_new_cache(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a" * 100)
    spec = study(tmp_path, files=(str(corpus),), block_size=10)
    before = prepare_data_cache(spec)
    corpus.write_text("b" * 200)
    after = prepare_data_cache(spec)
    assert before != after
    train, evals = load_datasets(spec)
    assert len(train) + len(evals) == 20 and text_of(train[0]["input_ids"]) == "b" * 10


def test_leftovers_of_a_killed_builder_are_cleared(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("x" * 100)
    spec = study(tmp_path, files=(str(corpus),), block_size=10)
    root = tmp_path / "run" / ".cache"
    key = cache_key(spec)
    stale = root / f".tmp-data-{key}-{socket.gethostname()}-4242-deadbeef"
    stale.mkdir(parents=True)
    (stale / "train_input_ids.npy").write_bytes(b"half written")
    broken = root / f"data-{key}"  # a folder without meta.json is not a finished cache
    broken.mkdir()
    train, evals = load_datasets(spec)
    assert len(train) + len(evals) == 10
    assert not stale.exists() and (broken / "meta.json").exists()
