"""push_to_hub: checkpoints uploaded in the background through huggingface_hub.

What Transformers' names mean here (`hub_strategy`):
- every_save: at each save, the model files go to the repo's root;
- checkpoint: the same, and the whole checkpoint to `last-checkpoint/` (to resume from);
- all_checkpoints: the same, and each checkpoint to its own `checkpoint-<step>/`;
- end: nothing during training; `save_model()` and `trainer.push_to_hub()` push.

How, so that the Hub never slows or kills training:
- At a save the training thread only takes a snapshot of the checkpoint: hard links (a copy
  where the filesystem has none) under `output_dir/_hub/`. A rotation that later deletes the
  checkpoint cannot touch the snapshot, and a checkpoint's files are never rewritten in place
  (checkpoint.py writes a new folder and renames it).
- One thread uploads, one commit per save, one at a time. A save that arrives while another
  waits replaces it (the waiting one is superseded: both would end at the same place in the
  repo), except with all_checkpoints, where each checkpoint has its own folder.
- A failed upload is retried (with waits of 1, 2, 4 s); when every attempt fails it is logged
  and recorded (the trainer copies the record into `state.hub_push_failures`), and training
  goes on. `wait()` at the end of train() lets the last upload finish.
- The token is given to huggingface_hub only; it is scrubbed from every message recorded.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any

from trainer.args import TrainingArguments

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = "_hub"  # under output_dir; Transformers' uploads of output_dir skip "_*"
# A checkpoint's training state: uploaded with the checkpoint, never as "the model" at the root.
TRAINING_STATE_FILES = frozenset(
    {
        "optimizer.pt",
        "scheduler.pt",
        "scaler.pt",
        "rng_state.pth",
        "trainer_state.json",
        "trainer_state_extra.json",
    }
)
RETRY_WAITS = (1.0, 2.0, 4.0)  # seconds before the 2nd, 3rd and 4th attempt


def repo_name(args: TrainingArguments) -> str:
    """hub_model_id, or output_dir's folder name (the Hub adds the token's namespace)."""
    assert args.output_dir is not None  # validate() fills it at creation and again at train()
    return args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))


def hub_api(token: str | None) -> Any:
    """An HfApi on HF_ENDPOINT as the environment says now (huggingface_hub reads it once, at
    its import)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<HUB_TOKEN>") if token else text


@dataclass
class Upload:
    """One commit: files (path in repo -> local path) from a snapshot folder."""

    step: int
    message: str
    files: dict[str, str]
    snapshot: str
    supersedable: bool


def snapshot(checkpoint: str, output_dir: str) -> str:
    """Hard links of the checkpoint's files in a folder of their own (a copy across devices)."""
    target = os.path.join(
        output_dir, SNAPSHOT_DIR, f"{os.path.basename(checkpoint)}-{time.time_ns()}"
    )
    os.makedirs(target)
    for root, _, names in os.walk(checkpoint):
        relative = os.path.relpath(root, checkpoint)
        os.makedirs(os.path.join(target, relative), exist_ok=True)
        for name in names:
            source, copy = os.path.join(root, name), os.path.join(target, relative, name)
            try:
                os.link(source, copy)
            except OSError:
                shutil.copy2(source, copy)
    return target


def checkpoint_upload(args: TrainingArguments, checkpoint: str, step: int) -> Upload:
    """The commit hub_strategy asks for at a save of `checkpoint` (snapshotted now)."""
    assert args.output_dir is not None  # validate() fills it at creation and again at train()
    folder = snapshot(checkpoint, args.output_dir)
    files: dict[str, str] = {}
    for root, _, names in os.walk(folder):
        for name in names:
            local = os.path.join(root, name)
            relative = os.path.relpath(local, folder).replace(os.sep, "/")
            if relative not in TRAINING_STATE_FILES:
                files[relative] = local  # the model, config, tokenizer, arguments: the root
            if args.hub_strategy in ("checkpoint", "all_checkpoints"):
                prefix = (
                    "last-checkpoint"
                    if args.hub_strategy == "checkpoint"
                    else os.path.basename(checkpoint)
                )
                files[f"{prefix}/{relative}"] = local
    return Upload(
        step=step,
        message=f"Training in progress, step {step}",
        files=files,
        snapshot=folder,
        supersedable=args.hub_strategy != "all_checkpoints",
    )


class HubSync:
    """The background uploader of one Trainer (see the module doc)."""

    def __init__(self, args: TrainingArguments):
        self.repo = repo_name(args)
        self.private = args.hub_private_repo
        self._token = args.hub_token
        self._pending: list[Upload] = []
        self._busy = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._repo_id: str | None = None  # with the namespace, once the repo exists
        self.failures: list[dict[str, Any]] = []  # every upload that failed all its attempts
        self.commits: list[str] = []  # the oids of the commits made, oldest first

    def __getstate__(self) -> dict[str, Any]:
        # A Trainer travels to Ray's workers pickled: its uploader goes as its settings only.
        return {"args": (self.repo, self.private, self._token)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        repo, private, token = state["args"]
        # Unpickling: this very object's class builds itself again from the settings.
        self.__init__(  # type: ignore[misc]
            TrainingArguments(output_dir=".", hub_model_id=repo, hub_token=token)
        )
        self.private = private

    # --- the training thread ---
    def submit_checkpoint(self, args: TrainingArguments, checkpoint: str, step: int) -> None:
        """Snapshots the checkpoint and queues its upload; a snapshot that cannot be made (a
        full disk) is recorded as a failed upload, not raised into training."""
        try:
            upload = checkpoint_upload(args, checkpoint, step)
        except OSError as error:
            self._give_up(step, 0, error)
            return
        self.submit(upload)

    def submit(self, upload: Upload) -> None:
        with self._condition:
            if upload.supersedable:
                for waiting in self._pending:
                    shutil.rmtree(waiting.snapshot, ignore_errors=True)
                self._pending = []
            self._pending.append(upload)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="hub-upload", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def wait(self) -> None:
        """Blocks until every submitted upload has been made or has failed for good."""
        with self._condition:
            while self._pending or self._busy:
                self._condition.wait()

    def take_failures(self) -> list[dict[str, Any]]:
        with self._condition:
            failures, self.failures = self.failures, []
            return failures

    def repo_id(self) -> str:
        """Creates the repo (if it does not exist) and returns its full id."""
        if self._repo_id is None:
            url = hub_api(self._token).create_repo(self.repo, private=self.private, exist_ok=True)
            self._repo_id = url.repo_id
        return self._repo_id

    # --- the upload thread ---
    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._condition.wait()
                upload = self._pending.pop(0)
                self._busy = True
            try:
                self._upload_with_retries(upload)
            finally:
                shutil.rmtree(upload.snapshot, ignore_errors=True)
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def _upload_with_retries(self, upload: Upload) -> None:
        error: BaseException | None = None
        for attempt, wait in enumerate((0.0, *RETRY_WAITS), start=1):
            if wait:
                time.sleep(wait)
            try:
                oid = self._commit(upload)
            except Exception as failure:  # any failure of the Hub must not reach training
                error = failure
                logger.warning(
                    "push_to_hub: upload of step %d failed (attempt %d of %d): %s",
                    upload.step,
                    attempt,
                    len(RETRY_WAITS) + 1,
                    scrub(_describe(failure), self._token),
                )
                continue
            with self._condition:
                self.commits.append(oid)
            return
        assert error is not None
        self._give_up(upload.step, len(RETRY_WAITS) + 1, error)

    def _give_up(self, step: int, attempts: int, error: BaseException) -> None:
        record = {"step": step, "attempts": attempts, "error": scrub(_describe(error), self._token)}
        with self._condition:
            self.failures.append(record)
        logger.warning("push_to_hub: gave up on the upload of step %d; training goes on", step)

    def _commit(self, upload: Upload) -> str:
        from huggingface_hub import CommitOperationAdd

        operations = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=local)
            for path, local in sorted(upload.files.items())
        ]
        info = hub_api(self._token).create_commit(
            repo_id=self.repo_id(), operations=operations, commit_message=upload.message
        )
        return info.oid


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def push_folder(
    args: TrainingArguments,
    folder: str,
    *,
    commit_message: str,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    blocking: bool = True,
) -> Any:
    """trainer.push_to_hub(): uploads `folder` (the saved model) to the repo's root, without
    checkpoints and `_*` entries, as Transformers does. Returns the CommitInfo (or a Future)."""
    api = hub_api(token if token is not None else args.hub_token)
    url = api.create_repo(
        repo_name(args),
        private=private if private is not None else args.hub_private_repo,
        exist_ok=True,
    )
    return api.upload_folder(
        repo_id=url.repo_id,
        folder_path=folder,
        commit_message=commit_message,
        revision=revision,
        run_as_future=not blocking,
        ignore_patterns=["_*", "checkpoint-*"],
    )
