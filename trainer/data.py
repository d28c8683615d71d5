"""Batches: a shuffle that is a pure function of (seed, epoch), and a collator without
per-sample Python work where the data allows it.

Because the order of an epoch depends only on (seed, epoch), a resume skips the batches it has
already seen by slicing the index list: no batch is loaded to be thrown away.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from trainer.args import TrainingArguments
from trainer.distributed import Ranks, ShardedBatches


def default_collate(samples: Any) -> dict[str, Any]:
    """Stacks a list of dicts of tensors / numbers / lists into a dict of batched tensors.

    A dict that is already a batch (what `__getitems__` of a tensor-backed dataset may return)
    passes through unchanged.
    """
    if isinstance(samples, Mapping):
        return dict(samples)
    first = samples[0]
    if not isinstance(first, Mapping):
        raise TypeError(
            f"the default collator expects dict samples (input_ids, labels, ...), got "
            f"{type(first).__name__}; pass data_collator= to the Trainer for other samples"
        )
    batch: dict[str, Any] = {}
    for key, value in first.items():
        column = [sample[key] for sample in samples]
        if isinstance(value, torch.Tensor):
            batch[key] = torch.stack(column)
        elif isinstance(value, (int, float, bool, list, tuple)):
            batch[key] = torch.tensor(column)
        else:
            try:
                import numpy as np

                if isinstance(value, np.ndarray | np.generic):
                    batch[key] = torch.as_tensor(np.stack(column))
                    continue
            except ImportError:  # pragma: no cover - numpy ships with torch
                pass
            batch[key] = column
    return batch


def default_collator(processing_class: Any) -> Callable[[Any], Any]:
    """The collator a Trainer gets without data_collator=: with a tokenizer (anything that
    can `pad`), Transformers' DataCollatorWithPadding, as transformers.Trainer does, so that
    rows of different lengths batch; else `default_collate`."""
    if processing_class is not None and callable(getattr(processing_class, "pad", None)):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(processing_class)
    return default_collate


class EpochBatches(torch.utils.data.Sampler[list[int]]):
    """Index lists of one epoch, shuffled by a generator seeded with (seed, epoch), starting
    at batch `skip`; `skip` is where a resumed run picks up inside the epoch."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        epoch: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        skip: int = 0,
    ) -> None:
        self.size, self.batch_size, self.drop_last, self.skip = size, batch_size, drop_last, skip
        if shuffle:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            self.order = torch.randperm(size, generator=generator).tolist()
        else:
            self.order = list(range(size))

    def total_batches(self) -> int:
        return num_batches(self.size, self.batch_size, self.drop_last)

    def __len__(self) -> int:
        return max(0, self.total_batches() - self.skip)

    def __iter__(self) -> Iterator[list[int]]:
        for index in range(self.skip, self.total_batches()):
            yield self.order[index * self.batch_size : (index + 1) * self.batch_size]


def num_batches(size: int, batch_size: int, drop_last: bool) -> int:
    return size // batch_size if drop_last else -(-size // batch_size)


def is_map_style(dataset: Any) -> bool:
    return (
        not isinstance(dataset, IterableDataset)
        and hasattr(dataset, "__len__")
        and hasattr(dataset, "__getitem__")
    )


def make_loader(
    dataset: Any,
    *,
    batch_size: int,
    collate: Callable[[Any], Any],
    sampler: Any,
    num_workers: int,
    pin_memory: bool,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader that never draws from the global torch RNG.

    DataLoader seeds its workers from the global generator unless given its own; drawing from
    the global one would shift the dropout stream and break bitwise-exact resume.
    """
    own_generator = torch.Generator().manual_seed(0)
    common: dict[str, Any] = dict(
        collate_fn=collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=own_generator,
    )
    if num_workers > 0:
        common["persistent_workers"] = persistent_workers
        if prefetch_factor is not None:
            common["prefetch_factor"] = prefetch_factor
    if sampler is not None:
        return DataLoader(dataset, batch_sampler=sampler, **common)
    return DataLoader(dataset, batch_size=batch_size, drop_last=drop_last, **common)


def loader_for(
    dataset: Any,
    args: TrainingArguments,
    *,
    batch_size: int,
    collate: Callable[[Any], Any],
    sampler: Any,
    on_accelerator: bool,
) -> DataLoader:
    """`make_loader` with the dataloader_* options of `args` (pinned memory only when the
    batches go to an accelerator)."""
    return make_loader(
        dataset,
        batch_size=batch_size,
        collate=collate,
        sampler=sampler,
        num_workers=args.dataloader_num_workers,
        pin_memory=args.dataloader_pin_memory and on_accelerator,
        persistent_workers=args.dataloader_persistent_workers,
        prefetch_factor=args.dataloader_prefetch_factor,
        drop_last=args.dataloader_drop_last,
    )


def step_groups(
    dataset: Any,
    args: TrainingArguments,
    *,
    collate: Callable[[Any], Any],
    batch_size: int,
    accumulation: int,
    epoch: int,
    skip_steps: int,
    on_accelerator: bool,
    ranks: Ranks | None = None,
) -> Iterator[list[Any]]:
    """The micro-batches of one epoch, grouped per optimizer step, after the first
    `skip_steps` steps' ones (a resume's position inside the epoch). Under torch.distributed
    `batch_size` is the global batch and each rank reads its share of it (`ranks.shard`)."""
    if ranks is not None and not is_map_style(dataset):
        raise ValueError(
            "training under torch.distributed needs a map-style train_dataset (with __len__ "
            "and __getitem__) so that every rank reads its share of each batch"
        )
    sampler: Any = None
    if is_map_style(dataset):
        sampler = EpochBatches(
            len(dataset),
            batch_size,
            args.data_seed if args.data_seed is not None else args.seed,
            epoch,
            drop_last=args.dataloader_drop_last,
            skip=skip_steps * accumulation,
        )
        if ranks is not None:
            sampler = ShardedBatches(sampler, ranks)
    elif hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    loader = loader_for(
        dataset,
        args,
        batch_size=batch_size,
        collate=collate,
        sampler=sampler,
        on_accelerator=on_accelerator,
    )
    # An iterable has no index to jump to: the seen batches are read and dropped.
    batches = (
        loader if sampler is not None else itertools.islice(loader, skip_steps * accumulation, None)
    )
    iterator = iter(batches)
    while group := list(itertools.islice(iterator, accumulation)):
        yield group


def loader_groups(
    loader: Any, accumulation: int, epoch: int, skip_steps: int
) -> Iterator[list[Any]]:
    """The micro-batches of one epoch of a subclass's own train loader, grouped per optimizer
    step; a resume reads and drops the seen ones (the loader's order is its own)."""
    sampler: Any = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    iterator = itertools.islice(iter(loader), skip_steps * accumulation, None)
    while group := list(itertools.islice(iterator, accumulation)):
        yield group


def batch_rows(batch: Any) -> int:
    values: Sequence[Any] = list(batch.values()) if isinstance(batch, Mapping) else batch
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
        if isinstance(value, list):
            return len(value)
    return 1
