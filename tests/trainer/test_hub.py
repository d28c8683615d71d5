"""push_to_hub end to end over HTTP: the real huggingface_hub client against the local Hub of
tests/helpers/local_hub.py. What arrives (files, bytes, commits) is asserted, not what was
called. (The same push through transformers.Trainer: tests/one_import/test_push_to_hub.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.local_hub import USER, LocalHub
from helpers.tiny_models import Regression, RegressionData

from trainer import Trainer, TrainerCallback, TrainingArguments

TOKEN = "hf_local_secret_0123456789"
REPO = f"{USER}/tiny"
MODEL_FILES = {"model.safetensors", "training_args.json", "training_args.bin"}
STATE_FILES = {
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "trainer_state.json",
    "trainer_state_extra.json",
}


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants

    # The local Hub speaks LFS, not xet; huggingface_hub read HF_HUB_DISABLE_XET at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    with LocalHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def hub_args(output_dir, **overrides):
    values = dict(
        output_dir=str(output_dir),
        max_steps=4,
        save_steps=2,
        per_device_train_batch_size=4,
        disable_tqdm=True,
        push_to_hub=True,
        hub_model_id="tiny",
        hub_token=TOKEN,
    )
    values.update(overrides)
    return TrainingArguments(**values)


def train(args, callbacks=()):
    trainer = Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), callbacks=list(callbacks)
    )
    trainer.train()
    return trainer


def read(path):
    return Path(path).read_bytes()


class PushRecorder(TrainerCallback):
    """The steps on_push_begin fired at (Transformers fires it before each upload)."""

    def __init__(self):
        self.steps = []

    def on_push_begin(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


@pytest.mark.parametrize("strategy", ["every_save", "checkpoint", "all_checkpoints"])
def test_each_strategy_commits_what_it_names(hub, tmp_path, strategy):
    pushes = PushRecorder()
    trainer = train(hub_args(tmp_path, hub_strategy=strategy), callbacks=[pushes])
    assert pushes.steps == [2, 4]  # before each checkpoint's upload
    commits = hub.commits(REPO)
    # train() returned only after the last save's upload: it is the head
    assert commits[-1].message == "Training in progress, step 4"
    head = commits[-1].files
    final = tmp_path / "checkpoint-4"
    assert {path for path in head if "/" not in path} == MODEL_FILES  # the model, no state
    assert head["model.safetensors"] == read(final / "model.safetensors")
    if strategy == "every_save":
        assert not [path for path in head if "/" in path]
    if strategy == "checkpoint":
        assert {p.split("/", 1)[1] for p in head if p.startswith("last-checkpoint/")} == (
            MODEL_FILES | STATE_FILES
        )
        assert json.loads(head["last-checkpoint/trainer_state.json"])["global_step"] == 4
    if strategy == "all_checkpoints":  # every checkpoint arrives, none is superseded
        assert [c.message for c in commits] == [
            "Training in progress, step 2",
            "Training in progress, step 4",
        ]
        for step in (2, 4):
            assert head[f"checkpoint-{step}/optimizer.pt"] == read(
                tmp_path / f"checkpoint-{step}" / "optimizer.pt"
            )
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests if "/lfs/" not in r.path)
    assert trainer.state.hub_push_failures == []
    assert not os.listdir(tmp_path / "_hub")  # every snapshot removed after its upload


def test_end_pushes_nothing_while_training_then_push_to_hub_uploads_the_model(hub, tmp_path):
    pushes = PushRecorder()
    trainer = train(hub_args(tmp_path, hub_strategy="end"), callbacks=[pushes])
    assert hub.commits(REPO) == [] and pushes.steps == []
    info = trainer.push_to_hub(tags=["tiny"], finetuned_from="none/base")
    assert pushes.steps == [4]
    (commit,) = hub.commits(REPO)
    assert info.oid == commit.oid and commit.message == "End of training"
    assert {"model.safetensors", "README.md"} <= set(commit.files)
    assert not [path for path in commit.files if path.startswith(("checkpoint-", "_"))]
    assert commit.files["model.safetensors"] == read(tmp_path / "model.safetensors")
    card = commit.files["README.md"].decode()
    assert "base_model: none/base" in card and "- tiny" in card
    with pytest.raises(TypeError, match=r"unknown arguments \['colour'\]"):
        trainer.push_to_hub(colour="blue")


def test_save_model_pushes_as_transformers_does(hub, tmp_path):
    trainer = train(hub_args(tmp_path, hub_strategy="end", save_strategy="no"))
    trainer.save_model()
    (commit,) = hub.commits(REPO)
    assert commit.message == "Model save"


class ReleaseAtLastSave(TrainerCallback):
    """Opens the held Hub once training has made every save (and rotated the old ones)."""

    def __init__(self, hub, last_step, output_dir):
        self.hub, self.last_step, self.output_dir = hub, last_step, output_dir
        self.seen_while_held: list[list[str]] = []

    def on_save(self, args, state, control, **kwargs):
        self.seen_while_held.append(sorted(os.listdir(self.output_dir)))
        if state.global_step == self.last_step:
            self.hub.release()


def test_uploads_never_block_training_nor_race_a_rotation(hub, tmp_path):
    hub.hold()  # the first upload stays in flight until the last save
    release = ReleaseAtLastSave(hub, last_step=10, output_dir=tmp_path)
    trainer = train(
        hub_args(tmp_path, max_steps=10, save_steps=2, save_total_limit=1), callbacks=[release]
    )
    # Training made all five saves while the first upload was held ...
    assert len(release.seen_while_held) == 5
    # ... rotation deleted checkpoint-2 while its upload was in flight ...
    assert "checkpoint-2" not in release.seen_while_held[-1]
    # ... the first upload still sent checkpoint-2's bytes, steps 4-8 were superseded, and the
    # last save was uploaded before train() returned.
    commits = hub.commits(REPO)
    assert [c.message for c in commits] == [
        "Training in progress, step 2",
        "Training in progress, step 10",
    ]
    assert commits[-1].files["model.safetensors"] == read(
        tmp_path / "checkpoint-10" / "model.safetensors"
    )
    assert commits[0].files["model.safetensors"] != commits[-1].files["model.safetensors"]
    assert trainer.state.hub_push_failures == []


def test_a_failed_upload_is_retried(hub, tmp_path):
    hub.fail_next(2, status=503)
    trainer = train(hub_args(tmp_path, max_steps=2, save_steps=2))
    assert [c.message for c in hub.commits(REPO)] == ["Training in progress, step 2"]
    assert [r.path for r in hub.requests[:3]] == ["/api/repos/create"] * 3
    assert trainer.state.hub_push_failures == []


SCRIPT = textwrap.dedent(
    """
    import json
    import sys
    sys.path.insert(0, sys.argv[2])
    from helpers.tiny_models import Regression, RegressionData
    from trainer import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=sys.argv[1], max_steps=4, save_steps=2, per_device_train_batch_size=4,
        logging_steps=1, push_to_hub=True, hub_model_id="tiny", hub_token=sys.argv[3],
    )
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    print("TRAINED", trainer.train().global_step, args)
    print("FAILURES", json.dumps(trainer.state.hub_push_failures))
    """
)


def test_a_hub_outage_never_stops_training_and_the_token_stays_secret(tmp_path):
    with LocalHub() as hub:
        hub.fail_always(500)
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1"}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path), str(Path(__file__).parents[1]), TOKEN],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TRAINED 4" in done.stdout
    output = done.stdout + done.stderr
    assert TOKEN not in output
    assert "push_to_hub: upload of step" in done.stderr and "500" in done.stderr
    assert "gave up on the upload" in done.stderr
    assert any(r.authorization == f"Bearer {TOKEN}" for r in hub.requests)  # it did try
    # both uploads failed every attempt (the second waited while the first was in flight)
    failures = json.loads(done.stdout.split("FAILURES ", 1)[1])
    assert [(f["step"], f["attempts"]) for f in failures] == [(2, 4), (4, 4)]
    # the failures are in the trainer state: the last checkpoint's lists the ones before it
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    # ours, beside Transformers' trainer_state.json
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state_extra.json").read_text())
    assert [f["step"] for f in state["hub_push_failures"]] in ([2], [])
    for failure in state["hub_push_failures"]:
        assert failure["attempts"] == 4 and "500" in failure["error"]
        assert TOKEN not in failure["error"]


def test_a_trainer_that_pushes_still_pickles_as_ray_ships_it(hub, tmp_path):
    import pickle

    trainer = train(hub_args(tmp_path, max_steps=2, save_steps=2))  # its upload thread ran
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy._hub_sync.repo == "tiny" and copy._hub_sync.commits == []
    assert copy.args.hub_token == TOKEN


def test_a_snapshot_that_cannot_be_made_is_recorded_not_raised(hub, tmp_path):
    (tmp_path / "_hub").write_text("a file where the snapshot folder goes")
    trainer = train(hub_args(tmp_path, max_steps=2, save_steps=2))
    assert trainer.state.global_step == 2
    (failure,) = trainer.state.hub_push_failures
    assert failure["step"] == 2 and failure["attempts"] == 0
    assert hub.commits(REPO) == []
