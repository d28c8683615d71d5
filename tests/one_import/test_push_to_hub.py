"""The one-import claim for push_to_hub: the same script through transformers.Trainer and ours,
each against its own local Hub over HTTP (the real huggingface_hub client runs in both)."""

from __future__ import annotations

import json

import pytest
from helpers.local_hub import USER, LocalHub
from helpers.one_import import run_script

REPO = f"{USER}/tiny-lm"
TOKEN = "hf_one_import_secret"

pytestmark = pytest.mark.slow  # each script runs twice, in fresh processes


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("push")
    found = {}
    for implementation in ("transformers", "ours"):
        with LocalHub() as hub:
            env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1"}
            output = run_script("push_to_hub.py", implementation, workdir, env=env)
            found[implementation] = (hub.commits(REPO), output, hub.requests)
    return found


def test_both_push_checkpoints_then_the_model_to_the_same_places(repos):
    for implementation, (commits, _, _) in repos.items():
        assert commits, implementation
        assert commits[-1].message == "End of training", implementation
        head = commits[-1].files
        # the model at the root, with its config and a model card
        assert {"model.safetensors", "config.json", "README.md"} <= set(head), implementation
        card = head["README.md"].decode()
        assert "base_model: none/base" in card and "- tiny" in card, implementation
        # the last checkpoint, resumable, under last-checkpoint/; no checkpoint-<n>/ folders
        checkpoint = {p.split("/", 1)[1] for p in head if p.startswith("last-checkpoint/")}
        assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"} <= (
            checkpoint
        ), implementation
        state = json.loads(head["last-checkpoint/trainer_state.json"])
        if implementation == "ours":
            # Ours waits for the newest save's upload before train() returns: always step 4.
            assert state["global_step"] == 4, implementation
        else:
            # Transformers skips a save's push while the previous one is still uploading, so
            # under load its last-checkpoint/ can be step 2's.
            assert state["global_step"] in (2, 4), implementation
        assert not [p for p in head if p.startswith(("checkpoint-", "_"))], implementation


def test_neither_prints_the_token(repos):
    for implementation, (_, output, requests) in repos.items():
        assert TOKEN not in output, implementation
        assert any(r.authorization == f"Bearer {TOKEN}" for r in requests), implementation
