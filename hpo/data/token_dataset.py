"""A map-style dataset over one 2-D token array, memory-mapped from the study's data cache.

Items (what `__getitem__` returns; every value a LongTensor):
- causal-lm: {"input_ids": [block_size], "labels": [block_size]} (labels == input_ids; the
  model shifts them);
- sequence-classification: {"input_ids": [block_size], "attention_mask": [block_size],
  "labels": []}.

Batching is cheap: `__getitems__(indices)` (which torch's DataLoader calls when it exists)
reads all rows in one fancy-index of the array and returns a list of per-item dicts, views of
one stacked batch; `get_batch(indices)` returns that stacked batch itself as a dict of tensors.

Pickling (DataLoader workers, Ray) carries the cache path and row indices, never the tokens;
the other side re-opens the memory map.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class TokenDataset:
    def __init__(self, cache_dir: str | Path, split: str, indices: np.ndarray | None = None):
        self.cache_dir = Path(cache_dir)
        self.split = split
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self._open()

    def _open(self) -> None:
        meta = json.loads((self.cache_dir / "meta.json").read_text())
        self.task: str = meta["task"]
        self.block_size: int = meta["block_size"]
        self.input_ids = np.load(self.cache_dir / f"{self.split}_input_ids.npy", mmap_mode="r")
        self.labels: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        if self.task == "sequence-classification":
            self.labels = np.load(self.cache_dir / f"{self.split}_labels.npy", mmap_mode="r")
            self.lengths = np.load(self.cache_dir / f"{self.split}_lengths.npy", mmap_mode="r")

    def __getstate__(self) -> dict[str, Any]:
        return {"cache_dir": str(self.cache_dir), "split": self.split, "indices": self.indices}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cache_dir = Path(state["cache_dir"])
        self.split = state["split"]
        self.indices = state["indices"]
        self._open()

    def __len__(self) -> int:
        return len(self.input_ids) if self.indices is None else len(self.indices)

    def __repr__(self) -> str:
        return (
            f"TokenDataset({self.split}, {self.task}, n={len(self)}, block_size={self.block_size})"
        )

    def _rows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(indices, dtype=np.int64)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for {self!r}")
        rows = np.where(rows < 0, rows + len(self), rows)
        return rows if self.indices is None else self.indices[rows]

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The rows at `indices` as one dict of stacked LongTensors (batch first)."""
        import torch

        rows = self._rows(indices)
        input_ids = torch.from_numpy(self.input_ids[rows].astype(np.int64))
        if self.task != "sequence-classification":
            return {"input_ids": input_ids, "labels": input_ids.clone()}
        assert self.labels is not None and self.lengths is not None
        positions = np.arange(self.block_size)[None, :]
        mask = (positions < self.lengths[rows][:, None]).astype(np.int64)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(self.labels[rows].astype(np.int64)),
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = self.get_batch(indices)
        return [{key: value[i] for key, value in batch.items()} for i in range(len(indices))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([int(index)])[0]
