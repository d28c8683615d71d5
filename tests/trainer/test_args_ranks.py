"""Under torch.distributed (torchrun here; hpo's `trial_processes` starts its ranks the same
way) the arguments' process properties are the process group's, as Transformers' are: a
callback that checks `args.should_save` writes from rank 0 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trainer import TrainingArguments

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "ddp_args.py"


def test_one_process_reads_as_transformers_does(tmp_path):
    import transformers

    theirs = transformers.TrainingArguments(str(tmp_path), report_to="none", use_cpu=True)
    ours = TrainingArguments(str(tmp_path))
    for name in ("world_size", "process_index", "local_process_index", "should_save", "should_log"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.parallel_mode == theirs.parallel_mode.value == "not_parallel"


def test_under_torchrun_each_rank_reads_its_own_values_and_only_rank_0_saves(tmp_path):
    result = tmp_path / "ranks.json"
    completed = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(HELPER), str(result), str(tmp_path / "out"),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    rows = [json.loads(Path(f"{result}.rank{rank}").read_text()) for rank in (0, 1)]
    for rank, row in enumerate(rows):
        assert row["ours"] == row["theirs"], rank
        assert row["ours"]["world_size"] == 2
        assert row["ours"]["process_index"] == row["ours"]["local_process_index"] == rank
        assert row["ours"]["should_save"] is row["ours"]["should_log"] is (rank == 0)
        assert row["parallel_mode"] == ["distributed", "distributed"]
    assert rows[0]["written"] == [1, 2] and rows[1]["written"] == []
    assert sorted(p.name for p in (tmp_path / "out").glob("written-by-*")) == ["written-by-rank0"]
