"""Checkpoints: atomic save and rotation; the checkpoint API (reading is in
trainer/checkpoint_read.py, re-exported here, so callers use `trainer.checkpoint` for both).

A checkpoint is written into a hidden temporary directory inside output_dir, every file and the
directory are fsynced, and only then is it renamed to `checkpoint-<step>`. A rename within one
filesystem is atomic, so a process killed at any moment leaves either the complete checkpoint
or no `checkpoint-<step>` at all. A disk that refuses a checkpoint (full, over quota,
read-only) is a CheckpointDiskError, with nothing half-written left.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import torch
from safetensors.torch import save_model

from trainer.args import TrainingArguments

# The checkpoint's layout and reading, re-exported (`X as X`): this module is the checkpoint API.
from trainer.checkpoint_read import OPTIMIZER_NAME as OPTIMIZER_NAME
from trainer.checkpoint_read import OWN_STATE_NAME as OWN_STATE_NAME
from trainer.checkpoint_read import PREFIX as PREFIX
from trainer.checkpoint_read import RNG_STATE_NAME as RNG_STATE_NAME
from trainer.checkpoint_read import SCALER_NAME as SCALER_NAME
from trainer.checkpoint_read import SCHEDULER_NAME as SCHEDULER_NAME
from trainer.checkpoint_read import TRAINER_STATE_NAME as TRAINER_STATE_NAME
from trainer.checkpoint_read import TRAINING_ARGS_NAME as TRAINING_ARGS_NAME
from trainer.checkpoint_read import TRAINING_ARGS_PICKLE_NAME as TRAINING_ARGS_PICKLE_NAME
from trainer.checkpoint_read import WEIGHTS_INDEX_NAME as WEIGHTS_INDEX_NAME
from trainer.checkpoint_read import WEIGHTS_NAME as WEIGHTS_NAME
from trainer.checkpoint_read import CheckpointError as CheckpointError
from trainer.checkpoint_read import checkpoint_dir as checkpoint_dir
from trainer.checkpoint_read import latest_checkpoint as latest_checkpoint
from trainer.checkpoint_read import load_training_state as load_training_state
from trainer.checkpoint_read import load_weights as load_weights
from trainer.checkpoint_read import read_state as read_state
from trainer.checkpoint_read import sorted_checkpoints as sorted_checkpoints
from trainer.compat import uncompiled
from trainer.rng import rng_state
from trainer.state import TrainerState

_TEMP_PREFIX = f".tmp-{PREFIX}-"
_DELETING_PREFIX = f".deleting-{PREFIX}-"


class CheckpointDiskError(OSError):
    """A checkpoint could not be written because of its disk: full, over quota, or read-only.

    An OSError with that errno (ENOSPC, EDQUOT, EROFS), whatever the writer raised:
    safetensors and torch.save wrap the disk's error in their own exception types.
    """

    def __str__(self) -> str:
        return str(self.strerror)  # the message alone, without "[Errno 28]"


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# How the wrapping writers spell those errors (safetensors: "... (os error 28)").
_DISK_ERROR_TEXTS = {
    errno.ENOSPC: ("No space left on device", "os error 28"),
    errno.EDQUOT: ("Disk quota exceeded", "os error 122"),
    errno.EROFS: ("Read-only file system", "os error 30"),
}
# torch.save's error on a full disk names neither ("unexpected pos ..."): a write that fails
# with less than this free on the output's filesystem is taken as a full disk.
FULL_DISK_BYTES = 1 << 20


def write_atomically(output_dir: str, step: int, write: Callable[[str], None]) -> str:
    """Runs `write(tmp_dir)`, fsyncs, then renames tmp_dir to checkpoint-<step>; returns it.

    A failure because of the disk raises CheckpointDiskError, with nothing half-written left.
    """
    final = checkpoint_dir(output_dir, step)
    try:
        os.makedirs(output_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{step}-", dir=output_dir)
    except OSError as error:
        _raise_if_disk_error(error, output_dir, final)
        raise
    try:
        # mkdtemp creates the folder owner-only; a checkpoint gets what the umask allows, like
        # any folder (a team sharing a volume must be able to read it).
        mask = current_umask()
        os.chmod(tmp, 0o777 & ~mask)
        write(tmp)
        for name in os.listdir(tmp):
            path = os.path.join(tmp, name)
            if os.path.isfile(path):
                os.chmod(path, 0o666 & ~mask)  # safetensors writes its files owner-only
            _fsync_path(path)
        _fsync_path(tmp)
        if os.path.exists(final):
            # Same step written again (a rerun into the same output_dir): move the old one
            # aside first, since a directory cannot be replaced by rename while it has files.
            _delete_atomically(final)
        os.rename(tmp, final)
    except BaseException as error:
        code = disk_errno(error, output_dir)  # before the cleanup frees the space again
        shutil.rmtree(tmp, ignore_errors=True)
        if code is not None:
            raise _disk_error(code, output_dir, final) from error
        raise
    _fsync_path(output_dir)
    return final


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, else set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def disk_errno(error: BaseException, directory: str) -> int | None:
    """ENOSPC, EDQUOT or EROFS when `error` (or what it wraps) came from the disk, else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            return seen.errno
        text = str(seen)
        for code, spellings in _DISK_ERROR_TEXTS.items():
            if any(spelling in text for spelling in spellings):
                return code
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, Exception) and 0 <= _free_bytes(directory) < FULL_DISK_BYTES:
        return errno.ENOSPC
    return None


def _raise_if_disk_error(error: BaseException, output_dir: str, final: str) -> None:
    code = disk_errno(error, output_dir)
    if code is not None:
        raise _disk_error(code, output_dir, final) from error


def _disk_error(code: int, output_dir: str, final: str) -> CheckpointDiskError:
    free = _free_bytes(output_dir)
    where = f"{free // 1024} KiB free in {output_dir}" if free >= 0 else output_dir
    return CheckpointDiskError(
        code, f"cannot write checkpoint {final}: {os.strerror(code)} ({where})"
    )


def _free_bytes(directory: str) -> int:
    """Bytes free to this user on the filesystem of `directory` (or its nearest existing
    parent); -1 when unknown."""
    path = os.path.abspath(directory)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        stats = os.statvfs(path)
    except OSError:
        return -1
    return stats.f_bavail * stats.f_frsize


def remove_leftovers(output_dir: str) -> None:
    """Deletes temp directories of saves or deletions that a killed process left behind."""
    for name in os.listdir(output_dir):
        if name.startswith((_TEMP_PREFIX, _DELETING_PREFIX)):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def _delete_atomically(path: str) -> None:
    # Renamed first, so that a crash half-way through rmtree never leaves a partial directory
    # under a name that resume_from_checkpoint=True would accept.
    parent, name = os.path.split(path)
    doomed = os.path.join(parent, f"{_DELETING_PREFIX}{name}-{uuid.uuid4().hex[:8]}")
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _fsync_path(path: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_training_state(
    directory: str,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
    state: TrainerState,
    args_dict: dict[str, Any],
    model_only: bool = False,
    args: Any = None,
) -> None:
    """Writes every file of a checkpoint into `directory` (the temporary one)."""
    save_model(uncompiled(model), os.path.join(directory, WEIGHTS_NAME))
    save_model_config(uncompiled(model), directory)
    if not model_only:
        if optimizer is not None:
            torch.save(optimizer.state_dict(), os.path.join(directory, OPTIMIZER_NAME))
        if scheduler is not None:
            torch.save(scheduler.state_dict(), os.path.join(directory, SCHEDULER_NAME))
        if scaler is not None:
            torch.save(scaler.state_dict(), os.path.join(directory, SCALER_NAME))
        torch.save(rng_state(), os.path.join(directory, RNG_STATE_NAME))
    with open(os.path.join(directory, TRAINING_ARGS_NAME), "w", encoding="utf-8") as handle:
        json.dump(args_dict, handle, indent=2, sort_keys=True, default=str)
    if args is not None:
        torch.save(args, os.path.join(directory, TRAINING_ARGS_PICKLE_NAME))
    state.save_own_to_json(os.path.join(directory, OWN_STATE_NAME))
    state.save_to_json(os.path.join(directory, TRAINER_STATE_NAME))


def save_model_config(model: torch.nn.Module, directory: str) -> None:
    """config.json (and generation_config.json for a model that generates), so that
    `AutoModel...from_pretrained(checkpoint)` loads a checkpoint as it loads a saved model."""
    config: Any = getattr(model, "config", None)
    if not hasattr(config, "save_pretrained"):
        return
    config.save_pretrained(directory)
    generation = getattr(model, "generation_config", None)
    can_generate = getattr(model, "can_generate", None)
    if generation is not None and callable(can_generate) and can_generate():
        generation.save_pretrained(directory)


def save_checkpoint(
    args: TrainingArguments,
    state: TrainerState,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
    processing_class: Any = None,
) -> str:
    """Writes checkpoint-<global_step> atomically (with the processing class, if it saves);
    returns the new directory.

    It does not rotate: the caller first tells whoever records checkpoints (the on_save
    callbacks, e.g. a study's storage) and only then calls `rotate`, so that a crash between
    the two never leaves a recorded checkpoint deleted (Transformers rotates before on_save).
    """
    step = state.global_step
    assert args.output_dir is not None  # validate() fills it at creation and again at train()
    final = checkpoint_dir(args.output_dir, step)
    # Set before writing, so that the saved trainer_state.json names its own checkpoint.
    state.last_checkpoint = final
    if state.best_global_step == step:
        state.best_model_checkpoint = final
    elif state.best_global_step:
        # The best step's checkpoint was written before its evaluation made it the best (a save
        # grid finer than the evaluations): it is the best checkpoint from now on, as in
        # Transformers.
        best = checkpoint_dir(args.output_dir, state.best_global_step)
        if state.best_model_checkpoint != best and os.path.isfile(
            os.path.join(best, TRAINER_STATE_NAME)
        ):
            state.best_model_checkpoint = best

    def write(directory: str) -> None:
        save_training_state(
            directory,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            state=state,
            args_dict=args.to_dict(),
            model_only=args.save_only_model,
            args=args,
        )
        if hasattr(processing_class, "save_pretrained"):
            processing_class.save_pretrained(directory)

    write_atomically(args.output_dir, step, write)
    return final


def rotate(output_dir: str, limit: int | None, best: str | None) -> list[str]:
    """Deletes the oldest checkpoints beyond `limit`, never the best one nor the newest.

    With limit=1 and a best checkpoint that is not the newest, both are kept (as Transformers
    does), so training can still resume and load the best model.
    """
    if limit is None:
        return []
    checkpoints = sorted_checkpoints(output_dir)
    keep: set[str] = set(checkpoints[-1:])
    if best is not None:
        best_path = os.path.abspath(best)
        keep.update(path for path in checkpoints if os.path.abspath(path) == best_path)
    for path in reversed(checkpoints):
        if len(keep) >= limit:
            break
        keep.add(path)
    deleted = [path for path in checkpoints if path not in keep]
    for path in deleted:
        _delete_atomically(path)
    return deleted
