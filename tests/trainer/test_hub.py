"""push_to_hub against a local stand-in for huggingface_hub.HfApi (the real Hub is unreachable
here); it records what would be uploaded and checks the folder is complete at upload time."""

import os

import huggingface_hub
import pytest
from helpers.tiny_models import Regression, RegressionData

from trainer import Trainer, TrainingArguments


class LocalHub:
    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, private=None, exist_ok=False):
        LocalHub.calls.append(("create_repo", repo_id))

    def upload_folder(self, repo_id, folder_path, path_in_repo, commit_message):
        files = sorted(os.listdir(folder_path))
        LocalHub.calls.append(
            ("upload", repo_id, os.path.basename(folder_path), path_in_repo, files, self.token)
        )


@pytest.mark.parametrize(
    ("strategy", "uploads"),
    [
        ("every_save", [("checkpoint-2", "."), ("checkpoint-4", ".")]),
        ("all_checkpoints", [("checkpoint-2", "checkpoint-2"), ("checkpoint-4", "checkpoint-4")]),
        ("end", [("checkpoint-4", ".")]),
    ],
)
def test_push_to_hub_uploads_each_saved_checkpoint(tmp_path, monkeypatch, strategy, uploads):
    monkeypatch.setattr(huggingface_hub, "HfApi", LocalHub)
    LocalHub.calls = []
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        save_steps=2,
        per_device_train_batch_size=4,
        disable_tqdm=True,
        push_to_hub=True,
        hub_model_id="me/tiny",
        hub_token="hf_secret",
        hub_strategy=strategy,
    )
    Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train()
    uploaded = [(c[2], c[3]) for c in LocalHub.calls if c[0] == "upload"]
    assert uploaded == uploads
    for call in LocalHub.calls:
        if call[0] == "upload":
            assert {"model.safetensors", "trainer_state.json", "optimizer.pt"} <= set(call[4])
            assert call[1] == "me/tiny" and call[5] == "hf_secret"
