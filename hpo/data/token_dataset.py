"""A map-style dataset over one 2-D token array, memory-mapped from the study's data cache.

Items (what `__getitem__` returns; every value a LongTensor unless said):
- causal-lm: {"input_ids": [block_size], "labels": [block_size]} (labels == input_ids; the
  model shifts them);
- masked-lm: train {"input_ids": [block_size]} (the masking collator makes the labels, per
  batch); eval {"input_ids", "labels"}, masked once when the cache was built (fixed masks);
- sequence-classification: {"input_ids": [block_size], "attention_mask": [block_size],
  "labels": []}; regression the same with a float32 label;
- token-classification: {"input_ids", "attention_mask", "labels"}, all [block_size] (-100 where
  the loss ignores a position);
- seq2seq-lm: {"input_ids": [source length], "attention_mask": [source length],
  "labels": [target length]}: unpadded, for DataCollatorForSeq2Seq (`get_batch` pads them:
  the source with the pad id, the labels with -100).

`label_names` is the label of each class id (id2label order) for sequence- and
token-classification, else None: what the model config records and the metrics read.

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
        self.pad_token_id: int = meta["pad_token_id"]
        self.label_names: list[str] | None = meta.get("label_names")
        self.labels: np.ndarray | None = None
        self.lengths: np.ndarray | None = None
        self.target_ids: np.ndarray | None = None
        self.target_lengths: np.ndarray | None = None
        for name in ("labels", "lengths", "target_ids", "target_lengths"):
            path = self.cache_dir / f"{self.split}_{name}.npy"
            if path.exists():
                setattr(self, name, np.load(path, mmap_mode="r"))

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
        if self.task == "causal-lm":
            return {"input_ids": input_ids, "labels": input_ids.clone()}
        if self.task == "masked-lm":
            if self.labels is None:  # train: the collator masks each batch afresh
                return {"input_ids": input_ids}
            # eval: masked once when the cache was built, with these labels
            return {"input_ids": input_ids, "labels": torch.from_numpy(self.labels[rows])}
        assert self.lengths is not None
        batch = {"input_ids": input_ids, "attention_mask": _mask(self.lengths[rows], input_ids)}
        if self.task == "seq2seq-lm":
            assert self.target_ids is not None and self.target_lengths is not None
            targets = self.target_ids[rows].astype(np.int64)
            padding = _mask(self.target_lengths[rows], targets) == 0
            batch["labels"] = torch.from_numpy(targets).masked_fill(padding, -100)
            return batch
        assert self.labels is not None
        dtype = np.float32 if self.task == "regression" else np.int64
        batch["labels"] = torch.from_numpy(self.labels[rows].astype(dtype))
        return batch

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = self.get_batch(indices)
        items = [{key: value[i] for key, value in batch.items()} for i in range(len(indices))]
        if self.task == "seq2seq-lm":  # unpadded: the collator pads to the batch's longest
            assert self.lengths is not None and self.target_lengths is not None
            rows = self._rows(indices)
            for item, source, target in zip(
                items, self.lengths[rows], self.target_lengths[rows], strict=True
            ):
                item["input_ids"] = item["input_ids"][:source]
                item["attention_mask"] = item["attention_mask"][:source]
                item["labels"] = item["labels"][:target].tolist()
        return items

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([int(index)])[0]


def _mask(lengths: np.ndarray, like: Any) -> Any:
    """The attention mask (1 on the first `length` positions of each row) shaped as `like`."""
    import torch

    positions = np.arange(like.shape[1])[None, :]
    return torch.from_numpy((positions < np.asarray(lengths)[:, None]).astype(np.int64))
