"""A study's data, tokenized once and cached on disk, then opened memory-mapped by every process.

Cache: `<output_dir>/.cache/data-<key>/` holds `meta.json` and, per split, `<split>_input_ids.npy`
(2-D, one row per item) plus the task's other arrays (`hpo.data.task_arrays`: labels, lengths,
targets; masked-lm's eval blocks masked once, with their labels), and `tokenizer/` (the Transformers tokenizer the rows were encoded with, trained here
for `data.tokenizer: {train: ...}`; the collators load it from there). The key hashes the task, the data spec (less `max_eval_samples`, which is
applied when opening), the files' size and mtime, the tokenizer and the factory's code. The
first process builds it under a file lock, in a temp folder renamed into place (atomic), so
racing workers never see half a cache and never tokenize twice; every later call, in any
process, opens the arrays memory-mapped.

The rows come from `hpo.data.sources`, the token ids from `hpo.data.tokenizers`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hpo.data.collators import fixed_eval_masks, needs_tokenizer
from hpo.data.factory import factory_fingerprint
from hpo.data.sources import Rows, read_rows
from hpo.data.task_arrays import SPLIT_SEED, hold_out, task_arrays, token_dtype, training_texts
from hpo.data.token_dataset import TokenDataset
from hpo.data.tokenizers import make_tokenizer
from hpo.errors import HpoError
from hpo.spec import BYTES_TOKENIZER, TEXT_TASKS, DataSpec, StudySpec, TrainedTokenizerSpec

CACHE_FORMAT = 2
TOKENIZER_FOLDER = "tokenizer"

# ---------------------------------------------------------------- public API


def load_datasets(spec: StudySpec) -> tuple[Any, Any]:
    """(train, eval) for the study; eval is None when there is no eval data (eval_fraction 0).

    Builds the cache on the first call for this data (in any process), then only opens it.
    """
    return open_datasets(prepare_data_cache(spec), spec.data.max_eval_samples)


def describe_data(spec: StudySpec) -> dict[str, Any]:
    """A small summary for printing: task, n_train, n_eval, block_size, vocab_size, cache_dir."""
    cache_dir = prepare_data_cache(spec)
    meta = read_meta(cache_dir)
    n_eval = meta["n_eval"]
    if spec.data.max_eval_samples is not None:
        n_eval = min(n_eval, spec.data.max_eval_samples)
    summary = {key: meta[key] for key in ("task", "n_train", "block_size", "vocab_size")}
    summary.update(n_eval=n_eval, pad_token_id=meta["pad_token_id"], cache_dir=str(cache_dir))
    summary["special_token_ids"] = meta.get("special_token_ids", {})
    summary["tokenizer_dir"] = tokenizer_dir(cache_dir)
    if "num_labels" in meta:
        summary.update(num_labels=meta["num_labels"], label_names=meta.get("label_names"))
    return summary


def tokenizer_dir(cache_dir: Path) -> str | None:
    """The saved Transformers tokenizer of a built cache (None for the bytes tokenizer)."""
    folder = Path(cache_dir) / TOKENIZER_FOLDER
    return str(folder) if folder.is_dir() else None


def prepare_data_cache(spec: StudySpec) -> Path:
    """The absolute path of the study's data cache, built first if it does not exist yet.

    Call it once in the orchestrating process before starting workers, and hand the path to
    `open_datasets` (absolute, so a worker with another working directory finds it too).
    """
    key = cache_key(spec)
    root = Path(spec.output_dir).resolve() / ".cache"
    final = root / f"data-{key}"
    if (final / "meta.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"data-{key}.lock"):
        if not (final / "meta.json").exists():  # another process may have built it meanwhile
            _build_cache(spec, root, final, key)
    return final


def open_datasets(cache_dir: str | Path, max_eval_samples: int | None = None) -> tuple[Any, Any]:
    """(train, eval) memory-mapped from a built cache; eval limited to a fixed subset."""
    meta = read_meta(Path(cache_dir))
    train = TokenDataset(cache_dir, "train")
    if meta["n_eval"] == 0:
        return train, None
    return train, TokenDataset(cache_dir, "eval", eval_subset(meta["n_eval"], max_eval_samples))


def eval_subset(n_eval: int, max_eval_samples: int | None) -> np.ndarray | None:
    """The same `max_eval_samples` rows every time: a seeded choice, kept in file order."""
    if max_eval_samples is None or max_eval_samples >= n_eval:
        return None
    chosen = np.random.default_rng(SPLIT_SEED).permutation(n_eval)[:max_eval_samples]
    return np.sort(chosen)


def read_meta(cache_dir: Path) -> dict[str, Any]:
    return json.loads((Path(cache_dir) / "meta.json").read_text())


def cache_key(spec: StudySpec) -> str:
    """A hash of everything that changes the tokenized arrays (and nothing that does not)."""
    data = asdict(spec.data)
    data.pop("max_eval_samples")
    material = {
        "format": CACHE_FORMAT,
        "task": spec.model.task,
        "data": data,
        "files": [_file_fingerprint(f) for f in spec.data.files],
        "eval_files": [_file_fingerprint(f) for f in spec.data.eval_files],
        "tokenizer": _tokenizer_fingerprint(spec.data.tokenizer),
        "factory": factory_fingerprint(spec.data.factory, "data.factory")
        if spec.data.factory
        else None,
    }
    encoded = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


# ---------------------------------------------------------------- building the cache


def _build_cache(spec: StudySpec, root: Path, final: Path, key: str) -> None:
    task = spec.model.task
    train_rows, eval_rows = read_rows(spec.data, task)
    tokenizer = make_tokenizer(spec.data.tokenizer, training_texts(task, train_rows))
    if task in TEXT_TASKS:
        arrays, extra = _causal_arrays(spec.data, tokenizer, train_rows, eval_rows)
        if task == "masked-lm":
            if not hasattr(tokenizer, "tokenizer"):  # bytes: no mask token
                raise HpoError(needs_tokenizer(task))
            arrays["eval_input_ids"], arrays["eval_labels"] = fixed_eval_masks(
                tokenizer.tokenizer, arrays["eval_input_ids"], spec.data.mlm_probability, SPLIT_SEED
            )
    else:
        arrays, extra = task_arrays(task, spec.data, tokenizer, train_rows, eval_rows)
    meta = {
        "format": CACHE_FORMAT,
        "key": key,
        "task": task,
        "block_size": spec.data.block_size,
        "vocab_size": tokenizer.vocab_size,
        "pad_token_id": tokenizer.pad_token_id,
        "n_train": len(arrays["train_input_ids"]),
        "n_eval": len(arrays["eval_input_ids"]),
        "special_token_ids": _special_token_ids(tokenizer),
        **extra,
    }
    _remove_leftovers(root, final, key)
    temp = root / f"{_temp_prefix(key)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        for name, array in arrays.items():
            with open(temp / f"{name}.npy", "wb") as handle:
                np.save(handle, array)
                handle.flush()
                os.fsync(handle.fileno())
        if hasattr(tokenizer, "save"):
            tokenizer.save(str(temp / TOKENIZER_FOLDER))
        (temp / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks done
        try:
            os.rename(temp, final)
        except OSError:
            if not (final / "meta.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    _fsync_dir(root)


def _temp_prefix(key: str) -> str:
    return f".tmp-data-{key}-{socket.gethostname()}-"


def _remove_leftovers(root: Path, final: Path, key: str) -> None:
    """Clear what a builder killed mid-way left behind (we hold the lock: none is running).

    Only this host's temp folders: on a shared filesystem another machine may be building.
    """
    for leftover in root.glob(f"{_temp_prefix(key)}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if final.exists() and not (final / "meta.json").exists():  # not written by this module
        shutil.rmtree(final)


def _causal_arrays(
    data: DataSpec, tokenizer: Any, train_rows: Rows, eval_rows: Rows | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    block = data.block_size
    train_blocks = _cut_blocks(tokenizer.encode_stream(train_rows), block)
    if len(train_blocks) == 0:
        raise HpoError(
            f"data: the training text gives no block of data.block_size={block} tokens; "
            "add text or lower block_size"
        )
    if eval_rows is None:
        train_blocks, eval_blocks = hold_out(train_blocks, data.eval_fraction, "blocks")
    else:
        eval_blocks = _cut_blocks(tokenizer.encode_stream(eval_rows), block)
    dtype = token_dtype(tokenizer.vocab_size)
    arrays: dict[str, np.ndarray] = {
        "train_input_ids": train_blocks.astype(dtype),
        "eval_input_ids": eval_blocks.astype(dtype),
    }
    return arrays, {}


def _special_token_ids(tokenizer: Any) -> dict[str, int]:
    """bos/eos/mask/... ids of a Transformers tokenizer, for the model config (none for bytes)."""
    inner = getattr(tokenizer, "tokenizer", None)
    names = ("bos_token_id", "eos_token_id", "mask_token_id", "cls_token_id", "sep_token_id")
    found = {name: getattr(inner, name, None) for name in names}
    return {name: int(value) for name, value in found.items() if value is not None}


def _cut_blocks(stream: np.ndarray, block_size: int) -> np.ndarray:
    n_blocks = len(stream) // block_size  # the tail shorter than a block is dropped
    return stream[: n_blocks * block_size].reshape(n_blocks, block_size)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """One builder per machine; the others wait, then find the cache built."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still keeps it whole
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- fingerprints


def _tokenizer_fingerprint(name: str | TrainedTokenizerSpec) -> Any:
    if isinstance(name, TrainedTokenizerSpec):
        return asdict(name)  # trained on the rows, whose files are fingerprinted already
    if name == BYTES_TOKENIZER:
        return name
    folder = Path(name)
    if not folder.is_dir():
        return name  # a hub id
    return [_file_fingerprint(str(f)) for f in sorted(folder.iterdir()) if f.is_file()]


def _file_fingerprint(path: str) -> list[Any]:
    """Path, size and mtime: cheap to check on every call, changes whenever the file does."""
    file = Path(path).resolve()
    try:
        stat = file.stat()
    except OSError:
        return [str(file), None, None]
    return [str(file), stat.st_size, stat.st_mtime_ns]
