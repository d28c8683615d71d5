"""A tiny GPT-2 trained by our Trainer under `torchrun` (tests/trainer/test_distributed.py).

    python -m torch.distributed.run --nproc_per_node 2 tests/helpers/ddp_train.py RESULT.json \
        OUTPUT_DIR PER_DEVICE_BATCH MAX_STEPS DROPOUT [RESUME_FROM]

Rank 0 writes RESULT.json: the train output's metrics, the log history and every rank's
rows per step; each rank writes RESULT.json.rank<r> with the first row of every batch it read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `helpers` importable

from helpers.tiny_models import TokenDataset, gpt2, quiet_args  # noqa: E402
from trainer import Trainer  # noqa: E402


class Recording(TokenDataset):
    """Remembers which rows this rank read."""

    def __init__(self) -> None:
        super().__init__(rows=48, seed=3)
        self.read: list[int] = []

    def __getitem__(self, index: int):
        self.read.append(int(index))
        return super().__getitem__(index)


def main() -> None:
    result, output_dir, batch, max_steps, dropout = sys.argv[1:6]
    resume = sys.argv[6] if len(sys.argv) > 6 else None
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    data = Recording()
    args = quiet_args(
        output_dir,
        per_device_train_batch_size=int(batch),
        per_device_eval_batch_size=8,
        max_steps=int(max_steps),
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="steps",
        save_steps=4,
        logging_steps=1,
        learning_rate=5e-3,
        save_total_limit=None,
    )
    trainer = Trainer(
        model_init=lambda: gpt2(dropout=float(dropout)),
        args=args,
        train_dataset=data,
        eval_dataset=TokenDataset(rows=20, seed=9),
    )
    output = trainer.train(resume_from_checkpoint=resume)
    rank = dist.get_rank()
    Path(f"{result}.rank{rank}").write_text(json.dumps(data.read))
    if rank == 0:
        Path(result).write_text(
            json.dumps({"metrics": output.metrics, "log_history": trainer.state.log_history})
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
