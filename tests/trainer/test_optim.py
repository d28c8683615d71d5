"""The optimizer and the schedule: Transformers' warmup and schedules, step by step."""

import math

import pytest
from helpers.tiny_models import Regression, RegressionData, quiet_args

from trainer import Trainer


def test_warmup_and_schedule_follow_transformers(tmp_path):
    args = quiet_args(
        tmp_path,
        max_steps=10,
        per_device_train_batch_size=4,
        warmup_steps=4,
        learning_rate=1.0,
        optim="sgd",
        lr_scheduler_type="cosine",
        max_grad_norm=0.0,
    )
    trainer = Trainer(model=Regression(), args=args, train_dataset=RegressionData())
    trainer.train()
    rates = [r["learning_rate"] for r in trainer.state.log_history if "learning_rate" in r]
    # lr logged at step k is the rate step k used: the schedule at k - 1 (warmup 4 steps,
    # cosine to 0 at 10), as Transformers logs it; the last one is not 0
    expected = [k / 4 if k < 4 else 0.5 * (1 + math.cos(math.pi * (k - 4) / 6)) for k in range(10)]
    assert rates == pytest.approx(expected, abs=1e-6)
