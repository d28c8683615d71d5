"""One run trained by several processes (torch.distributed), as `torchrun` would start them.

The trainer is distributed when a process group of more than one rank is initialised before
`train()` (by `torchrun`, or by whoever started the ranks); nothing to configure. Then:

- data: every optimizer step reads one *global* batch of `per_device_train_batch_size x
  world_size` rows from the same (seed, epoch) order on every rank, and rank r keeps rows
  r, r + world, r + 2 world, ... of it. This is what DistributedSampler gives (the epoch's
  order cut into strides), so the global batches are those of one process with the global
  batch size, and a resume skips whole global batches: the exact-resume guarantee holds;
- gradients: the loss of every rank is normalised by the loss tokens of the *global* step and
  the gradients are summed across ranks: the update one process would make on the global batch;
- metrics: the training loss and the evaluation loss are summed across ranks;
- decisions: rank 0's control flags (stop, save, evaluate) are broadcast at every step and its
  prune decision at every evaluation, so every rank stops at the same step;
- checkpoints: rank 0 writes them; every other rank adds only its RNG state (`rng_state_<r>.pth`)
  once rank 0's checkpoint is complete, and reads it back on resume.

A rank that dies makes the others' next collective fail (gloo and NCCL see the closed
connection) or time out (the process group's timeout): no rank waits forever.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

RANK_RNG_NAME = "rng_state_{rank}.pth"
_FLAGS = (
    "should_training_stop",
    "should_save",
    "should_evaluate",
    "should_log",
    "should_epoch_stop",
)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run's process group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- data ---
    def shard(self, batch: list[int], order: list[int]) -> list[int]:
        """This rank's rows of one global batch; a short last batch is padded from the start
        of the epoch's order (as DistributedSampler pads) so that no rank gets none."""
        if len(batch) < self.world_size:
            batch = batch + order[: self.world_size - len(batch)]
        return batch[self.rank :: self.world_size]

    def eval_indices(self, size: int, batch_size: int) -> list[list[int]]:
        """This rank's evaluation batches: every `world_size`-th row, nothing padded (the
        sums are reduced, so every row counts exactly once)."""
        mine = list(range(self.rank, size, self.world_size))
        return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]

    # --- reductions ---
    def sum(self, value: Any) -> Any:
        """`value` (a number or a tensor) summed over every rank, as the same type."""
        import torch.distributed as dist

        if isinstance(value, torch.Tensor):
            total = value.detach().clone()
            dist.all_reduce(total)
            return total
        tensor = torch.tensor(float(value), dtype=torch.float64, device=_device())
        dist.all_reduce(tensor)
        return type(value)(tensor.item())

    def sum_gradients(self, model: torch.nn.Module) -> None:
        """Every parameter's gradient summed over the ranks, in one flat all-reduce."""
        import torch.distributed as dist

        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def begin(self, model: torch.nn.Module, seed: int) -> None:
        """Rank 0's weights on every rank, then a random stream of each rank's own.

        model_init may draw different weights on each rank; the broadcast makes them one
        model. Each rank's own seed (seed + rank) gives every rank its own dropout masks, as
        independent micro-batches of one process would have (which is why a checkpoint keeps
        every rank's RNG state).
        """
        import torch.distributed as dist

        from trainer.rng import set_seed

        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor.data, src=0)
        if not self.is_main:
            set_seed(seed + self.rank)

    # --- decisions ---
    def sync_control(self, control: Any) -> None:
        """Rank 0's control flags on every rank (a callback of rank 0 may stop or save)."""
        flags = self.broadcast([bool(getattr(control, name)) for name in _FLAGS])
        for name, value in zip(_FLAGS, flags, strict=True):
            setattr(control, name, value)

    def broadcast_flag(self, flag: bool) -> bool:
        return self.broadcast([flag])[0]

    def broadcast(self, values: list[bool]) -> list[bool]:
        import torch.distributed as dist

        tensor = torch.tensor([int(v) for v in values], dtype=torch.int32, device=_device())
        dist.broadcast(tensor, src=0)
        return [bool(v) for v in tensor.tolist()]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    # --- checkpoints ---
    def follow_checkpoint(self, output_dir: str, state: Any) -> str:
        """On ranks > 0: the state changes rank 0's save makes, without writing anything."""
        from trainer.checkpoint import checkpoint_dir

        final = checkpoint_dir(output_dir, state.global_step)
        state.last_checkpoint = final
        if state.best_global_step == state.global_step:
            state.best_model_checkpoint = final
        return final

    def after_checkpoint(self, checkpoint: str) -> None:
        """Once rank 0's checkpoint is complete, every other rank adds its RNG state to it;
        no rank goes on (and rank 0 reports no checkpoint) before all are written."""
        self.barrier()
        self.save_rng(checkpoint)
        self.barrier()

    def save_rng(self, checkpoint: str) -> None:
        """Ranks > 0 add their RNG state to the checkpoint rank 0 has just completed."""
        from trainer.rng import rng_state

        if self.is_main:
            return
        path = os.path.join(checkpoint, RANK_RNG_NAME.format(rank=self.rank))
        temporary = f"{path}.tmp"
        torch.save(rng_state(), temporary)
        os.replace(temporary, path)  # a reader sees the whole file or none

    def restore_rng(self, checkpoint: str) -> None:
        """Ranks > 0 take back their own RNG state (rank 0's was restored with the rest)."""
        from trainer.rng import set_rng_state

        path = os.path.join(checkpoint, RANK_RNG_NAME.format(rank=self.rank))
        if not self.is_main and os.path.exists(path):
            set_rng_state(torch.load(path, weights_only=True))


def _device() -> torch.device:
    """Where collectives' small tensors live: NCCL needs them on this rank's GPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def current() -> Ranks | None:
    """This process's ranks when a process group of 2 or more is initialised, else None."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return None
    world_size = dist.get_world_size()
    return Ranks(dist.get_rank(), world_size) if world_size > 1 else None


class ShardedBatches:
    """A batch sampler: this rank's share of each global batch of an `EpochBatches`."""

    def __init__(self, batches: Any, ranks: Ranks) -> None:
        self.batches, self.ranks = batches, ranks

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield self.ranks.shard(batch, self.batches.order)
