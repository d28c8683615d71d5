"""Our checkpoints' files as Transformers reads them: trainer_state.json loads in
`transformers.TrainerState` (our own fields sit in a file beside it, and checkpoints that still
have them inline resume too), and a checkpoint whose weights are sharded safetensors (as
`save_pretrained(max_shard_size=...)` writes them) resumes, through Transformers' Trainer and
ours alike."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.tiny_models import TokenDataset, gpt2

from trainer import Trainer, TrainerCallback, TrainingArguments
from trainer.checkpoint import CheckpointError, read_state

LIBRARIES = ("transformers", "trainer")


def classes(library: str) -> tuple[Any, Any]:
    """(Trainer, TrainingArguments) of `library`: the one import a script changes."""
    if library == "transformers":
        import transformers

        return transformers.Trainer, transformers.TrainingArguments
    return Trainer, TrainingArguments


def run_args(library: str, output_dir: Path, **kwargs: Any) -> Any:
    base: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="steps",
        save_steps=2,
        seed=7,
        report_to="none",
        disable_tqdm=True,
    )
    base.update(kwargs)
    return classes(library)[1](**base)


def losses(state: Any) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in state.log_history if "loss" in row}


# --- trainer_state.json ---
def test_trainer_state_json_loads_in_transformers_with_the_keys_transformers_writes(tmp_path):
    from transformers import TrainerState as TransformersState

    keys, files = {}, {}
    for library in LIBRARIES:
        Trainer_, _ = classes(library)
        trainer = Trainer_(
            model=gpt2(dropout=0.0, seed=1),
            args=run_args(library, tmp_path / library),
            train_dataset=TokenDataset(rows=16),
        )
        trainer.train()
        path = tmp_path / library / "checkpoint-4" / "trainer_state.json"
        loaded = TransformersState.load_from_json(str(path))  # refuses unknown keys
        assert loaded.global_step == 4 and loaded.max_steps == 4
        assert sorted(losses(loaded)) == [1, 2, 3, 4]
        keys[library] = set(json.loads(path.read_text()))
        files[library] = set(os.listdir(path.parent))
    assert keys["trainer"] <= keys["transformers"]
    # every file of Transformers' checkpoint (training_args.bin included) is in ours
    assert files["transformers"] <= files["trainer"], files["transformers"] - files["trainer"]
    # ours reads Transformers' checkpoint state too
    theirs = read_state(str(tmp_path / "transformers" / "checkpoint-4"))
    assert theirs.global_step == 4 and sorted(losses(theirs)) == [1, 2, 3, 4]


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


def exact_args(output_dir: Path) -> TrainingArguments:
    # 40 rows, 4 per batch, 2 batches per step: 5 steps per epoch, so step 7 is mid-epoch
    return run_args(
        "trainer",
        output_dir,
        max_steps=10,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        save_steps=100,
    )


def as_written_before(checkpoint: Path) -> None:
    """Rewrites a checkpoint as earlier versions wrote it: our fields inside trainer_state.json."""
    own = checkpoint / "trainer_state_extra.json"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    state.update(json.loads(own.read_text()))
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    own.unlink()


@pytest.mark.parametrize("layout", ["current", "inline"])
def test_resume_stays_exact_with_either_layout_of_the_state(tmp_path, layout):
    full = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=exact_args(tmp_path / "full"),
        train_dataset=TokenDataset(rows=40),
    )
    full.train()
    first = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=exact_args(tmp_path / "split"),
        train_dataset=TokenDataset(rows=40),
        callbacks=[StopAt(7)],
    )
    first.train()
    checkpoint = tmp_path / "split" / "checkpoint-7"
    own = json.loads((checkpoint / "trainer_state_extra.json").read_text())
    assert (own["epoch_index"], own["steps_in_epoch"]) == (1, 2)  # the data position
    assert "epoch_index" not in json.loads((checkpoint / "trainer_state.json").read_text())
    if layout == "inline":
        as_written_before(checkpoint)
    second = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=exact_args(tmp_path / "split"),
        train_dataset=TokenDataset(rows=40),
    )
    second.train(resume_from_checkpoint=str(checkpoint))
    assert losses(second.state) == losses(full.state)  # every step, exactly
    expected = full.model.state_dict()
    for name, tensor in second.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


# --- sharded safetensors ---
def reshard(checkpoint: Path) -> list[str]:
    """Replaces the checkpoint's model.safetensors with save_pretrained's shards and index."""
    from safetensors.torch import load_model

    model = gpt2(dropout=0.0)
    load_model(model, str(checkpoint / "model.safetensors"))
    (checkpoint / "model.safetensors").unlink()
    model.save_pretrained(str(checkpoint), max_shard_size="20KB")
    shards = sorted(name for name in os.listdir(checkpoint) if name.startswith("model-"))
    assert (checkpoint / "model.safetensors.index.json").is_file() and len(shards) > 1
    return shards


def sharded_resume_snippet(library: str, output_dir: Path) -> dict[str, Any]:
    """Trains 4 steps; then resumes a second run from its step-2 checkpoint, resharded."""
    Trainer_, _ = classes(library)

    def trainer(directory: Path) -> Any:
        return Trainer_(
            model=gpt2(dropout=0.0, seed=1),
            args=run_args(library, directory),
            train_dataset=TokenDataset(rows=8),
        )

    full = trainer(output_dir / "full")
    full.train()
    reshard(output_dir / "full" / "checkpoint-2")
    resumed = trainer(output_dir / "resumed")
    resumed.train(resume_from_checkpoint=str(output_dir / "full" / "checkpoint-2"))
    return {
        "full": full.model.state_dict(),
        "resumed": resumed.model.state_dict(),
        "full_losses": losses(full.state),
        "losses": losses(resumed.state),
    }


def test_a_sharded_checkpoint_resumes_as_in_transformers(tmp_path):
    runs = {library: sharded_resume_snippet(library, tmp_path / library) for library in LIBRARIES}
    for library, run in runs.items():
        # it resumed after step 2 and trained on as the uninterrupted run did
        for step in (3, 4):
            assert run["losses"][step] == pytest.approx(run["full_losses"][step]), library
        for name, tensor in run["resumed"].items():
            torch.testing.assert_close(tensor, run["full"][name], msg=f"{library} {name}")
    # Same run in both: ours counts a causal LM's loss over the shifted label tokens (15 of
    # 16 per row, the documented normalisation), Transformers' over all 16.
    for step in (1, 2, 3, 4):
        assert runs["trainer"]["full_losses"][step] * 15 / 16 == pytest.approx(
            runs["transformers"]["full_losses"][step], rel=1e-4
        )


def test_missing_weights_name_what_is_looked_for(tmp_path):
    Trainer(
        model=gpt2(dropout=0.0, seed=1),
        args=run_args("trainer", tmp_path, max_steps=2),
        train_dataset=TokenDataset(rows=8),
    ).train()
    checkpoint = tmp_path / "checkpoint-2"
    shards = reshard(checkpoint)

    def resume() -> str:
        trainer = Trainer(
            model=gpt2(dropout=0.0),
            args=run_args("trainer", tmp_path / "again"),
            train_dataset=TokenDataset(rows=8),
        )
        with pytest.raises(CheckpointError) as error:
            trainer.train(resume_from_checkpoint=str(checkpoint))
        return str(error.value)

    (checkpoint / shards[-1]).unlink()
    message = resume()
    assert f"shard {shards[-1]}" in message and "model.safetensors.index.json" in message
    (checkpoint / "model.safetensors.index.json").unlink()
    message = resume()
    assert str(checkpoint) in message
    assert "neither model.safetensors nor model.safetensors.index.json" in message
    assert "save_only_model" not in message  # a model-only checkpoint has its weights


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch unpickled-training-args",))


def test_training_args_bin_is_written_but_never_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = run_args("trainer", tmp_path, max_steps=2)
    Trainer(model=gpt2(dropout=0.0, seed=1), args=args, train_dataset=TokenDataset(rows=8)).train()
    checkpoint = tmp_path / "checkpoint-2"
    saved = torch.load(checkpoint / "training_args.bin", weights_only=False)
    assert isinstance(saved, TrainingArguments) and saved.max_steps == 2
    torch.save(_Payload(), checkpoint / "training_args.bin")
    resumed = Trainer(
        model=gpt2(dropout=0.0, seed=1),
        args=run_args("trainer", tmp_path / "again", max_steps=4),
        train_dataset=TokenDataset(rows=8),
    )
    assert resumed.train(resume_from_checkpoint=str(checkpoint)).global_step == 4
    assert not (tmp_path / "unpickled-training-args").exists()


# --- the best checkpoint, saved before its evaluation made it the best ---
class Scores:
    """compute_metrics giving these accuracies, one per evaluation."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self, prediction: Any) -> dict[str, float]:
        return {"accuracy": self.values.pop(0)}


def best_checkpoint_snippet(library: str, output_dir: Path) -> dict[str, Any]:
    Trainer_, _ = classes(library)
    trainer = Trainer_(
        model=gpt2(dropout=0.0, seed=1),
        args=run_args(
            library,
            output_dir,
            max_steps=-1,
            num_train_epochs=3,
            eval_strategy="epoch",  # 2 steps per epoch: evaluations at steps 2, 4, 6
            save_steps=1,  # a checkpoint at every step, written before the epoch's evaluation
            metric_for_best_model="accuracy",
            greater_is_better=True,
        ),
        train_dataset=TokenDataset(rows=16),
        eval_dataset=TokenDataset(rows=8, seed=1),
        compute_metrics=Scores(0.59, 0.57, 0.55),
    )
    trainer.train()
    state = trainer.state
    return {
        "best_step": state.best_global_step,
        "best_checkpoint": os.path.basename(state.best_model_checkpoint or ""),
        "saved_best": os.path.basename(
            read_state(str(output_dir / "checkpoint-6")).best_model_checkpoint or ""
        ),
    }


def test_the_best_checkpoint_is_named_once_its_evaluation_finds_it_as_in_transformers(tmp_path):
    runs = {library: best_checkpoint_snippet(library, tmp_path / library) for library in LIBRARIES}
    assert runs["trainer"] == runs["transformers"]
    assert runs["trainer"] == {
        "best_step": 2,
        "best_checkpoint": "checkpoint-2",
        "saved_best": "checkpoint-2",
    }
