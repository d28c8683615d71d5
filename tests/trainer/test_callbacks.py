"""The callbacks this package ships: early stopping and the progress bar."""

import pytest
from helpers.tiny_models import Regression, RegressionData, quiet_args

from trainer import EarlyStoppingCallback, Trainer


def test_early_stopping(tmp_path):
    # lr 0 -> the eval loss never improves -> stop after `patience` non-improving evaluations
    args = quiet_args(
        tmp_path,
        max_steps=100,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=1,
        learning_rate=0.0,
    )
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2)],
    )
    output = trainer.train()
    assert output.global_step == 3


@pytest.mark.parametrize("disable", [True, False])
def test_progress_bar_honours_disable_tqdm(tmp_path, capsys, disable):
    args = quiet_args(tmp_path, max_steps=3, per_device_train_batch_size=8, disable_tqdm=disable)
    Trainer(model=Regression(), args=args, train_dataset=RegressionData()).train()
    shown = "3/3" in capsys.readouterr().err
    assert shown is (not disable)
