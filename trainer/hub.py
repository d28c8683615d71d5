"""push_to_hub: upload each saved checkpoint with huggingface_hub (at save, synchronously, so a
rotation can never delete a folder that is still being uploaded)."""

from __future__ import annotations

import os

from trainer.args import TrainingArguments


def repo_id(args: TrainingArguments) -> str:
    return args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))


def push_checkpoint(args: TrainingArguments, checkpoint_dir: str, *, at_end: bool = False) -> None:
    """Uploads one checkpoint; with hub_strategy="end" only the final one (at_end=True)."""
    if (args.hub_strategy == "end") != at_end:
        return
    from huggingface_hub import HfApi

    api = HfApi(token=args.hub_token)
    repo = repo_id(args)
    api.create_repo(repo, private=args.hub_private_repo, exist_ok=True)
    name = os.path.basename(checkpoint_dir)
    target = {
        "every_save": ".",
        "end": ".",
        "checkpoint": "last-checkpoint",
        "all_checkpoints": name,
    }[args.hub_strategy]
    api.upload_folder(
        repo_id=repo,
        folder_path=checkpoint_dir,
        path_in_repo=target,
        commit_message=f"Training in progress, {name}",
    )
