"""trainer/distributed.py: our Trainer under `torchrun` with gloo and 2 processes.

Compared with the same run in one process with the same global batch (the thing we did not
change), and with itself interrupted and resumed (the exact-resume guarantee).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.tiny_models import TokenDataset, gpt2, quiet_args

from trainer import Trainer
from trainer.distributed import RANK_RNG_NAME, Ranks

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "ddp_train.py"


def torchrun(tmp_path: Path, name: str, *args: object, processes: int = 2) -> dict:
    result = tmp_path / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            str(HELPER),
            str(result),
            *map(str, args),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(result.read_text())
    report["rows"] = [
        json.loads(Path(f"{result}.rank{rank}").read_text()) for rank in range(processes)
    ]
    return report


def single_process(output_dir: Path, batch: int, max_steps: int) -> dict:
    trainer = Trainer(
        model_init=lambda: gpt2(dropout=0.0),
        args=quiet_args(
            output_dir,
            per_device_train_batch_size=batch,
            per_device_eval_batch_size=8,
            max_steps=max_steps,
            eval_strategy="steps",
            eval_steps=4,
            logging_steps=1,
            learning_rate=5e-3,
        ),
        train_dataset=TokenDataset(rows=48, seed=3),
        eval_dataset=TokenDataset(rows=20, seed=9),
    )
    return {"metrics": trainer.train().metrics, "log_history": trainer.state.log_history}


def losses(report: dict) -> list[float]:
    return [row["loss"] for row in report["log_history"] if "loss" in row]


def test_sharding_is_distributed_sampler_strides_of_the_global_batch():
    order = list(range(100, 110))
    ranks = [Ranks(rank, 2) for rank in (0, 1)]
    assert [r.shard(order[0:4], order) for r in ranks] == [[100, 102], [101, 103]]
    # A short last global batch is padded from the epoch's start, so no rank reads nothing.
    assert [r.shard([109], order) for r in ranks] == [[109], [100]]
    assert Ranks(1, 2).eval_indices(5, 2) == [[1, 3]]
    assert Ranks(0, 2).eval_indices(5, 2) == [[0, 2], [4]]


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    one = single_process(tmp_path / "one", batch=8, max_steps=8)
    two = torchrun(tmp_path, "two", tmp_path / "two", 4, 8, 0.0)
    # Same global batches, gradients summed over ranks: the same run up to float rounding.
    assert losses(two) == pytest.approx(losses(one), rel=1e-4)
    assert two["metrics"]["eval_loss"] == pytest.approx(one["metrics"]["eval_loss"], rel=1e-4)
    assert two["metrics"]["train_loss"] == pytest.approx(one["metrics"]["train_loss"], rel=1e-4)
    # Each rank read its half of every global batch: at every step, two disjoint sets of rows.
    first, second = two["rows"]
    assert len(first) == len(second) == 8 * 4
    for step in range(8):
        assert not set(first[step * 4 : step * 4 + 4]) & set(second[step * 4 : step * 4 + 4])
    # Rank 0 alone wrote the checkpoints; rank 1 added only its RNG state.
    checkpoint = tmp_path / "two" / "checkpoint-4"
    assert (checkpoint / "model.safetensors").is_file()
    assert (checkpoint / RANK_RNG_NAME.format(rank=1)).is_file()
    assert not list((tmp_path / "two").glob(".tmp-*"))


@pytest.mark.slow
def test_a_resumed_two_process_run_is_the_uninterrupted_one_exactly(tmp_path):
    # With dropout on: every rank's RNG state has to come back for the same masks.
    whole = torchrun(tmp_path, "whole", tmp_path / "whole", 4, 8, 0.1)
    resumed = torchrun(
        tmp_path, "resumed", tmp_path / "resumed", 4, 8, 0.1, tmp_path / "whole" / "checkpoint-4"
    )
    # The resumed history holds steps 1..4 from the checkpoint, then its own 5..8, bit for bit.
    assert len(losses(whole)) == 8
    assert losses(resumed) == losses(whole)
    assert resumed["metrics"]["eval_loss"] == whole["metrics"]["eval_loss"]
    weights = [
        (tmp_path / d / "checkpoint-8" / "model.safetensors").read_bytes()
        for d in ("whole", "resumed")
    ]
    assert weights[0] == weights[1]
