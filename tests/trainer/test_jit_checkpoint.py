"""enable_jit_checkpoint: after a SIGTERM (and the grace period Transformers' callback waits),
a checkpoint at the next step boundary, and training stops. The same snippet through
`transformers.Trainer` and ours gives the same checkpoint and the same last step; the
checkpoint resumes."""

from __future__ import annotations

import os
import signal
import time

import pytest
import transformers
from helpers.tiny_models import Regression, RegressionData
from transformers.trainer_jit_checkpoint import JITCheckpointCallback

import trainer

LIBRARIES = pytest.mark.parametrize("lib", [transformers, trainer], ids=["transformers", "ours"])


@pytest.fixture(autouse=True)
def _keep_sigterm_handler():
    before = signal.getsignal(signal.SIGTERM)
    transformers.utils.logging.set_verbosity_error()
    yield
    signal.signal(signal.SIGTERM, before)


def run_until_sigterm(lib, output_dir):
    manager = None

    class TerminateAtStep3(lib.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step != 3:
                return
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 60
            while not manager.is_checkpoint_requested and time.monotonic() < deadline:
                time.sleep(0.01)  # the manager's timer thread sets the flag

    args = lib.TrainingArguments(
        str(output_dir), max_steps=10, save_strategy="no", enable_jit_checkpoint=True,
        per_device_train_batch_size=4, report_to="none", disable_tqdm=True,
    )  # fmt: skip
    run = lib.Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        callbacks=[TerminateAtStep3()],
    )
    [jit] = [c for c in run.callback_handler.callbacks if isinstance(c, JITCheckpointCallback)]
    assert jit.trainer is run
    manager = jit.jit_manager
    manager.kill_wait = 0  # no grace period to wait through in a test
    run.train()
    return run


@LIBRARIES
def test_a_sigterm_saves_a_checkpoint_and_stops_training(lib, tmp_path):
    run = run_until_sigterm(lib, tmp_path)
    checkpoints = sorted(p.name for p in tmp_path.glob("checkpoint-*"))
    # The flag is seen when the next step begins: the checkpoint holds step 3; that step runs
    # to its end, and training stops there.
    assert checkpoints == ["checkpoint-3"]
    assert run.state.global_step == 4
    assert not (tmp_path / "checkpoint-3" / "checkpoint-is-incomplete.txt").exists()
    assert signal.getsignal(signal.SIGTERM) is not jit_handler(run)  # restored at the end


def jit_handler(run):
    [jit] = [c for c in run.callback_handler.callbacks if isinstance(c, JITCheckpointCallback)]
    return jit.jit_manager._sigterm_handler


def test_ours_resumes_from_the_jit_checkpoint(tmp_path):
    run_until_sigterm(trainer, tmp_path)
    args = trainer.TrainingArguments(
        str(tmp_path), max_steps=10, save_strategy="no", per_device_train_batch_size=4,
        disable_tqdm=True,
    )  # fmt: skip
    resumed = trainer.Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-3"))
    assert resumed.state.global_step == 10


def test_a_subclass_may_not_override_what_only_the_jit_callback_calls():
    class Overrides(trainer.Trainer):
        def _save_checkpoint(self, model, trial=None):
            pass

    with pytest.raises(TypeError, match="_save_checkpoint"):
        Overrides(model=Regression(), args=trainer.TrainingArguments("out"))
