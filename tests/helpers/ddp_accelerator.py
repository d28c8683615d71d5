"""`trainer.accelerator` and `accelerator_config` under `torchrun` with 2 processes
(tests/trainer/test_accelerate_compat.py).

    python -m torch.distributed.run --nproc_per_node 2 tests/helpers/ddp_accelerator.py RESULT

Each rank writes RESULT.rank<r>: what its accelerator reports, and the refusal of a
multi-process option the loop does not honour.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

_ROOT = Path(__file__).resolve().parents[2]
sys.path[0:0] = [str(_ROOT), str(_ROOT / "tests")]

from helpers.tiny_models import Regression, quiet_args  # noqa: E402
from trainer import Trainer  # noqa: E402


def main() -> None:
    result = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    out = result.parent / f"out{rank}"
    accelerator = Trainer(model=Regression(), args=quiet_args(out, use_cpu=True)).accelerator
    report = {
        "num_processes": accelerator.num_processes,
        "process_index": accelerator.process_index,
        "distributed_type": str(accelerator.distributed_type),
    }
    try:
        Trainer(
            model=Regression(),
            args=quiet_args(out, use_cpu=True, accelerator_config={"split_batches": True}),
        )
    except ValueError as error:
        report["refusal"] = str(error)
    Path(f"{result}.rank{rank}").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
