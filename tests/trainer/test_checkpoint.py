"""Checkpoints: exact resume, atomic save under SIGKILL, rotation, safe and checked loading."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers.tiny_models import Regression, RegressionData, TokenDataset, gpt2
from safetensors.torch import load_file

from trainer import Trainer, TrainerCallback, TrainingArguments
from trainer.checkpoint import CheckpointError, sorted_checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class CountingTokens(TokenDataset):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = 0

    def __getitem__(self, index):
        self.reads += 1
        return super().__getitem__(index)


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


def _resume_args(out):
    return TrainingArguments(
        output_dir=str(out),
        max_steps=12,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=3e-3,
        warmup_steps=2,
        logging_steps=1,
        save_strategy="steps",
        save_steps=100,
        seed=7,
        disable_tqdm=True,
    )


def _step_losses(state):
    return {row["step"]: row["loss"] for row in state.log_history if "loss" in row}


def test_exact_resume_same_losses_and_bitwise_weights(tmp_path):
    # dropout on (RNG state matters), shuffled data, accumulation, and the stop falls mid-epoch
    # (5 steps per epoch; stop at 7 = epoch 1, step 2).
    full = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=_resume_args(tmp_path / "full"),
        train_dataset=TokenDataset(rows=40),
    )
    full.train()

    first = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=_resume_args(tmp_path / "split"),
        train_dataset=TokenDataset(rows=40),
        callbacks=[StopAt(7)],
    )
    assert first.train().global_step == 7
    data = CountingTokens(rows=40)
    second = Trainer(
        model_init=lambda: gpt2(dropout=0.1),
        args=_resume_args(tmp_path / "split"),
        train_dataset=data,
    )
    second.train(resume_from_checkpoint=str(tmp_path / "split" / "checkpoint-7"))

    assert _step_losses(second.state) == _step_losses(full.state)  # every step, exactly
    assert sorted(_step_losses(second.state)) == list(range(1, 13))
    full_weights = full.model.state_dict()
    for name, tensor in second.model.state_dict().items():
        assert torch.equal(tensor, full_weights[name]), name
    # the seen part of the epoch was skipped by index: only the 5 remaining steps were read
    assert data.reads == 5 * 2 * 4


def test_resume_true_takes_newest_complete_checkpoint(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        save_steps=2,
        disable_tqdm=True,
        learning_rate=0.01,
    )
    Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), callbacks=[StopAt(4)]
    ).train()
    os.makedirs(tmp_path / ".tmp-checkpoint-5-abc")  # a killed save's leftover is not a checkpoint
    steps = []

    class Steps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps.append(state.global_step)

    trainer = Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), callbacks=[Steps()]
    )
    trainer.train(resume_from_checkpoint=True)
    assert steps == [5, 6]
    assert [os.path.basename(p) for p in sorted_checkpoints(str(tmp_path))] == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
    ]
    assert not os.path.exists(
        tmp_path / ".tmp-checkpoint-5-abc"
    )  # cleaned when the next run starts


def test_older_checkpoints_are_deleted_only_after_on_save_has_recorded_the_new_one(tmp_path):
    # Whoever records checkpoints (a study's storage) must be told before rotation deletes
    # the one it names: a crash or a failed record in between must leave that one on disk.
    on_disk_at_save = {}

    class Recorder(TrainerCallback):
        def on_save(self, args, state, control, checkpoint_dir=None, **kwargs):
            names = [os.path.basename(p) for p in sorted_checkpoints(args.output_dir)]
            on_disk_at_save[state.global_step] = names

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=4,
        save_steps=2,
        save_total_limit=1,
        learning_rate=0.01,
        disable_tqdm=True,
    )
    Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), callbacks=[Recorder()]
    ).train()
    assert on_disk_at_save == {
        2: ["checkpoint-2"],
        4: ["checkpoint-2", "checkpoint-4"],
        6: ["checkpoint-4", "checkpoint-6"],
    }
    assert [os.path.basename(p) for p in sorted_checkpoints(str(tmp_path))] == ["checkpoint-6"]


def test_rotation_never_deletes_the_best_and_best_is_loaded_at_end(tmp_path):
    scores = iter([5.0, 1.0, 3.0, 4.0, 6.0])  # best at the 2nd evaluation (step 4)

    def compute_metrics(_prediction):
        return {"score": next(scores)}

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=10,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=2,
        save_steps=2,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="score",
        greater_is_better=False,
        learning_rate=0.05,
        disable_tqdm=True,
    )
    saved = []

    class Saved(TrainerCallback):
        def on_save(self, args, state, control, checkpoint_dir=None, **kwargs):
            saved.append((checkpoint_dir, state.last_checkpoint))

    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(seed=1),
        compute_metrics=compute_metrics,
        callbacks=[Saved()],
    )
    trainer.train()
    names = [os.path.basename(p) for p in sorted_checkpoints(str(tmp_path))]
    assert names == ["checkpoint-4", "checkpoint-10"]
    assert trainer.state.best_model_checkpoint == str(tmp_path / "checkpoint-4")
    assert trainer.state.best_metric == 1.0 and trainer.state.best_global_step == 4
    assert [os.path.basename(a) for a, b in saved if a == b] == [
        f"checkpoint-{s}" for s in (2, 4, 6, 8, 10)
    ]
    best = load_file(str(tmp_path / "checkpoint-4" / "model.safetensors"))
    assert torch.equal(trainer.model.linear.weight, best["linear.weight"])
    state = json.loads((tmp_path / "checkpoint-10" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"].endswith("checkpoint-4")


def test_tied_weights_round_trip(tmp_path):
    model = gpt2(dropout=0.0, seed=3)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=2,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=TokenDataset(rows=8)).train()
    fresh = gpt2(dropout=0.0, seed=4)
    from trainer.checkpoint import load_weights

    load_weights(str(tmp_path / "checkpoint-2"), fresh)
    assert fresh.lm_head.weight.data_ptr() == fresh.transformer.wte.weight.data_ptr()
    assert torch.equal(fresh.transformer.wte.weight, model.transformer.wte.weight)


@pytest.fixture
def one_checkpoint(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=2,
        disable_tqdm=True,
    )
    Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train()
    return args, tmp_path / "checkpoint-2"


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing_dir", "Can't find a valid checkpoint at"),  # Transformers' words
        ("optimizer.pt:truncate", "optimizer.pt is corrupt"),
        ("model.safetensors:truncate", "model.safetensors are corrupt"),
        ("trainer_state.json:garbage", "trainer_state.json is corrupt"),
        ("rng_state.pth:delete", "rng_state.pth is missing"),
        ("optimizer.pt:pickle", "optimizer.pt is corrupt"),
    ],
)
def test_damaged_checkpoint_errors_name_the_path(
    one_checkpoint, damage, message, monkeypatch, tmp_path
):
    args, path = one_checkpoint
    monkeypatch.chdir(tmp_path)
    target = path
    if damage == "missing_dir":
        target = path.parent / "checkpoint-99"
    else:
        name, how = damage.split(":")
        file = path / name
        if how == "truncate":
            file.write_bytes(file.read_bytes()[:40])
        elif how == "garbage":
            file.write_text("{not json")
        elif how == "delete":
            file.unlink()
        elif how == "pickle":
            file.write_bytes(pickle.dumps({"state": _Evil()}, protocol=2))
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    with pytest.raises(CheckpointError) as error:
        trainer.train(resume_from_checkpoint=str(target))
    assert message in str(error.value) and str(target) in str(error.value)
    assert not (tmp_path / "pwned-by-checkpoint").exists()  # weights_only never ran the payload


def test_resume_true_without_checkpoint_is_an_error(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, disable_tqdm=True)
    with pytest.raises(CheckpointError, match="No valid checkpoint found in output directory"):
        Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train(
            resume_from_checkpoint=True
        )


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import trainer.checkpoint as ckpt
    from helpers.tiny_models import Regression, RegressionData
    from trainer import Trainer, TrainingArguments

    where, out = sys.argv[1], sys.argv[2]
    saves = 0
    original_save_model = ckpt.save_model
    original_rmtree = ckpt.shutil.rmtree

    def save_model_then_die(model, path, *a, **k):
        global saves
        original_save_model(model, path, *a, **k)
        saves += 1
        if where == "mid-save" and saves == 3:   # weights of checkpoint-3 written, the rest not
            os.kill(os.getpid(), signal.SIGKILL)

    def rmtree_then_die(path, *a, **k):
        victim = sorted(os.listdir(path))[0]
        os.remove(os.path.join(path, victim))    # half-deleted, then killed
        os.kill(os.getpid(), signal.SIGKILL)

    ckpt.save_model = save_model_then_die
    if where == "mid-rotation":
        ckpt.shutil.rmtree = rmtree_then_die
    args = TrainingArguments(output_dir=out, max_steps=6, per_device_train_batch_size=4, save_steps=1,
                             save_total_limit=2, disable_tqdm=True, learning_rate=0.01)
    Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train()
    """
)


@pytest.mark.parametrize(
    ("where", "survivors"),
    [
        ("mid-save", ["checkpoint-1", "checkpoint-2"]),  # checkpoint-3 was being written
        ("mid-rotation", ["checkpoint-2", "checkpoint-3"]),  # checkpoint-1 was being deleted
    ],
)
def test_sigkill_during_save_leaves_earlier_checkpoints_intact(tmp_path, where, survivors):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    out = tmp_path / "out"
    # A subprocess imports `helpers` as pytest does (pythonpath = ["tests"]), this checkout first.
    paths = [REPO, os.path.join(REPO, "tests"), os.environ.get("PYTHONPATH", "")]
    path = os.pathsep.join(p for p in paths if p)
    result = subprocess.run(
        [sys.executable, str(script), where, str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    assert leftovers, "the kill did not land inside a save"
    complete = [os.path.basename(p) for p in sorted_checkpoints(str(out))]
    assert complete == survivors
    # resume=True takes the newest survivor, every file of which is intact, and finishes the run
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=6,
        per_device_train_batch_size=4,
        save_steps=1,
        save_total_limit=2,
        disable_tqdm=True,
        learning_rate=0.01,
    )
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 6
    assert [os.path.basename(p) for p in sorted_checkpoints(str(out))] == [
        "checkpoint-5",
        "checkpoint-6",
    ]
    assert not [n for n in os.listdir(out) if n.startswith(".")]


def test_processing_class_is_saved_with_each_checkpoint(tmp_path):
    class Tokenizer:
        def save_pretrained(self, directory):
            with open(os.path.join(directory, "tokenizer_config.json"), "w") as handle:
                json.dump({"kind": "bytes"}, handle)

    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=1,
        disable_tqdm=True,
    )
    Trainer(
        model=Regression(), args=args, train_dataset=RegressionData(), processing_class=Tokenizer()
    ).train()
    for step in (1, 2):
        saved = json.loads((tmp_path / f"checkpoint-{step}" / "tokenizer_config.json").read_text())
        assert saved == {"kind": "bytes"}


def test_checkpoint_resumes_into_a_run_with_another_weight_decay(tmp_path):
    # PBT copies a donor's checkpoint into a trial with mutated hyperparameters: the run's own
    # values must win over those stored in the optimizer state.
    base = dict(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        save_steps=2,
        disable_tqdm=True,
        logging_steps=1,
        lr_scheduler_type="linear",
    )
    donor = TrainingArguments(**base, weight_decay=0.0, learning_rate=0.01)
    Trainer(
        model=Regression(), args=donor, train_dataset=RegressionData(), callbacks=[StopAt(2)]
    ).train()
    mutated_args = TrainingArguments(**base, weight_decay=0.1, learning_rate=0.02)
    mutated = Trainer(model=Regression(), args=mutated_args, train_dataset=RegressionData())
    mutated.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert mutated.state.global_step == 4
    assert [g["weight_decay"] for g in mutated.optimizer.param_groups] == [0.1, 0.0]
    # lr logged at step k is the rate step k used, the linear schedule at k - 1 (as
    # Transformers logs it), with the donor's then the new base
    rates = {
        row["step"]: row["learning_rate"]
        for row in mutated.state.log_history
        if "learning_rate" in row
    }
    assert rates[1] == pytest.approx(0.01 * 4 / 4)
    assert rates[3] == pytest.approx(0.02 * 2 / 4)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_checkpoint_modes_follow_the_umask_like_transformers(tmp_path, umask):
    # A team sharing a volume reads each other's checkpoints: not owner-only (mkdtemp's 0700).
    import stat

    import transformers
    from helpers.tiny_models import TokenDataset, gpt2

    previous = os.umask(umask)
    try:
        modes = {}
        for name, module in (("ours", None), ("theirs", transformers)):
            output = tmp_path / name
            arguments = dict(
                output_dir=str(output),
                max_steps=1,
                save_steps=1,
                report_to="none",
                disable_tqdm=True,
            )
            if module is None:
                Trainer(
                    model=gpt2(), args=TrainingArguments(**arguments), train_dataset=TokenDataset(8)
                ).train()
            else:
                module.Trainer(
                    model=gpt2(),
                    args=module.TrainingArguments(**arguments),
                    train_dataset=TokenDataset(8),
                ).train()
            folder = output / "checkpoint-1"
            modes[name] = {
                entry.name: stat.S_IMODE(entry.stat().st_mode)
                for entry in [folder, *folder.iterdir()]
            }
    finally:
        os.umask(previous)
    ours, theirs = modes["ours"], modes["theirs"]
    assert ours["checkpoint-1"] == theirs["checkpoint-1"] == 0o777 & ~umask
    for name in ("config.json", "trainer_state.json", "optimizer.pt"):
        assert ours[name] == theirs[name] == 0o666 & ~umask, name
    # safetensors writes weights owner-only (Transformers' model.safetensors is 0600 here);
    # ours are readable as the umask allows, like every other file of the checkpoint.
    assert ours["model.safetensors"] == 0o666 & ~umask
    # and the checkpoint loads the way a Transformers user loads one
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "ours" / "checkpoint-1")
    )
    assert type(model).__name__ == "GPT2LMHeadModel"


def test_a_full_disk_is_a_checkpoint_disk_error_with_nothing_half_written(tmp_path):
    # A real 16 KiB tmpfs: smaller than one checkpoint (the RNG states alone are ~15 KiB).
    # safetensors and torch.save wrap ENOSPC in their own errors; the trainer says ENOSPC.
    import errno

    from trainer.checkpoint import CheckpointDiskError

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs `mount -t tmpfs` (root): {mounted.stderr.strip()}")
    try:
        args = TrainingArguments(
            output_dir=str(disk / "out"), max_steps=2, save_steps=2, disable_tqdm=True
        )
        trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
        with pytest.raises(CheckpointDiskError) as caught:
            trainer.train()
        assert caught.value.errno == errno.ENOSPC
        assert str(caught.value).startswith(
            f"cannot write checkpoint {disk / 'out' / 'checkpoint-2'}: No space left on device ("
        )
        assert os.listdir(disk / "out") == []  # the temporary folder is gone
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
