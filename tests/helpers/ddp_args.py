"""The process properties of the arguments under `torchrun` (tests/trainer/test_args_ranks.py).

    python -m torch.distributed.run --nproc_per_node 2 tests/helpers/ddp_args.py RESULT OUTPUT_DIR

Each rank writes RESULT.rank<r>: the properties as Transformers' TrainingArguments and ours read
them, and what a callback that writes only `if args.should_save` wrote during a short run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

# `helpers` importable, and this checkout's `trainer` package ahead of the tests' `trainer/`.
_ROOT = Path(__file__).resolve().parents[2]
sys.path[0:0] = [str(_ROOT), str(_ROOT / "tests")]

import transformers  # noqa: E402

import trainer  # noqa: E402
from helpers.tiny_models import Regression, RegressionData  # noqa: E402

PROPERTIES = ("world_size", "process_index", "local_process_index", "should_save", "should_log")


def properties(args) -> dict:
    return {name: getattr(args, name) for name in PROPERTIES}


def main() -> None:
    result, output_dir = sys.argv[1:3]
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    transformers.utils.logging.set_verbosity_error()
    theirs = transformers.TrainingArguments(output_dir, report_to="none", use_cpu=True)
    written = []

    class WritesOnTheSavingRank(trainer.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if args.should_save:
                marker = Path(output_dir) / f"written-by-rank{args.process_index}"
                marker.write_text(str(state.global_step))
                written.append(state.global_step)

    args = trainer.TrainingArguments(
        output_dir, max_steps=2, save_strategy="steps", save_steps=1, disable_tqdm=True
    )
    run = trainer.Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        callbacks=[WritesOnTheSavingRank()],
    )
    run.train()
    Path(f"{result}.rank{rank}").write_text(
        json.dumps(
            {
                "theirs": properties(theirs),
                "ours": properties(args),
                "parallel_mode": [str(theirs.parallel_mode.value), args.parallel_mode],
                "written": written,
            }
        )
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
