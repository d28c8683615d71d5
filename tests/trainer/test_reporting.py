"""report_to: TensorBoard event files and an MLflow file store receive the same rows from our
trainer as from transformers.Trainer (Transformers' own integration callbacks); a missing
library is an error that names what to install."""

from __future__ import annotations

import glob
import os
import struct

import pytest
from helpers.tiny_models import TokenDataset, gpt2

from trainer import Trainer, TrainingArguments


def _train(library: str, output_dir: str, report_to: str) -> None:
    import transformers

    module = transformers if library == "transformers" else __import__("trainer")
    args = module.TrainingArguments(
        output_dir=output_dir,
        max_steps=4,
        per_device_train_batch_size=8,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="no",
        report_to=report_to,
        disable_tqdm=True,
        run_name="tiny",
    )
    module.Trainer(
        model=gpt2(seed=0),
        args=args,
        train_dataset=TokenDataset(16),
        eval_dataset=TokenDataset(8, seed=1),
    ).train()


def _tensorboard_scalars(folder: str) -> dict[str, list[int]]:
    """tag -> steps, read from the TFRecord event files under folder (tensorboardX's protos)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[int]] = {}
    for path in glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True):
        with open(path, "rb") as handle:
            data = handle.read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append(event.step)
    return scalars


def test_tensorboard_receives_the_rows_transformers_writes(tmp_path):
    for library in ("trainer", "transformers"):
        _train(library, str(tmp_path / library), "tensorboard")
    ours = _tensorboard_scalars(str(tmp_path / "trainer"))
    theirs = _tensorboard_scalars(str(tmp_path / "transformers"))
    assert ours["train/loss"] == theirs["train/loss"] == [1, 2, 3, 4]
    assert ours["train/learning_rate"] == theirs["train/learning_rate"]
    assert ours["eval/loss"] == theirs["eval/loss"] == [2, 4]
    # Transformers writes FLOPs and memory figures we do not compute; every tag of ours is theirs.
    assert set(ours) <= set(theirs)
    assert set(theirs) - set(ours) <= {"train/total_flos"}


def _mlflow_metrics(store: str) -> dict[str, list[int]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file://{store}")
    (run,) = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
    ]
    return {
        name: sorted(m.step for m in client.get_metric_history(run.info.run_id, name))
        for name in run.data.metrics
    }


def test_an_mlflow_file_store_receives_the_rows_transformers_logs(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    found = {}
    # MLflow 3 asks for this to keep using a file store (it prefers a database now).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for library in ("trainer", "transformers"):
        store = tmp_path / f"mlruns-{library}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{store}")
        _train(library, str(tmp_path / library), "mlflow")
        found[library] = _mlflow_metrics(str(store))
    ours, theirs = found["trainer"], found["transformers"]
    assert ours["loss"] == theirs["loss"] == [1, 2, 3, 4]
    assert ours["eval_loss"] == theirs["eval_loss"] == [2, 4]
    assert set(ours) <= set(theirs)


def test_a_missing_integration_library_names_what_to_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    args = TrainingArguments(output_dir=str(tmp_path), report_to="wandb")
    with pytest.raises(RuntimeError, match=r"report_to='wandb'.*pip install wandb"):
        Trainer(model=gpt2(), args=args, train_dataset=TokenDataset(8))


def test_an_unknown_integration_is_refused_with_the_choices(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to=["tensorbord"])
    with pytest.raises(ValueError, match=r"\['tensorbord'\] unknown; choose from .*tensorboard"):
        Trainer(model=gpt2(), args=args, train_dataset=TokenDataset(8))
