"""The callbacks this package ships: early stopping and the progress bar."""

import pytest
from helpers.terminal import run_on_a_terminal
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


def test_early_stopping_warns_on_an_evaluation_without_its_metric(tmp_path, caplog):
    # After training, evaluate(test_ds, metric_key_prefix="test") has no eval_loss: Transformers
    # warns and goes on; so do we.
    args = quiet_args(
        tmp_path, max_steps=2, per_device_train_batch_size=4, eval_strategy="steps", eval_steps=1
    )
    trainer = Trainer(
        model=Regression(),
        args=args,
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=2)],
    )
    trainer.train()
    with caplog.at_level("WARNING", logger="trainer.callbacks"):
        metrics = trainer.evaluate(RegressionData(seed=3), metric_key_prefix="test")
    assert "test_loss" in metrics
    assert "EarlyStoppingCallback watches 'eval_loss'" in caplog.text


ROWS_SCRIPT = """
import sys
from helpers.tiny_models import TokenDataset, gpt2
from {library} import Trainer, TrainingArguments

args = TrainingArguments(
    output_dir=sys.argv[1], max_steps=4, per_device_train_batch_size=8, logging_steps=1,
    eval_strategy="steps", eval_steps=2, save_strategy="no", report_to="none", use_cpu=True,
)
Trainer(model=gpt2(), args=args, train_dataset=TokenDataset(32),
        eval_dataset=TokenDataset(8, seed=1)).train()
"""


def _row_keys(output: str) -> list[list[str]]:
    """The printed rows (dict reprs on their own line), as their lists of keys."""
    import ast

    rows = []
    for line in output.replace("\r", "\n").splitlines():
        line = line.strip()
        if line.startswith("{'") and line.endswith("}"):
            rows.append(list(ast.literal_eval(line)))
    return rows


def _run_rows_script(tmp_path, library: str, terminal: bool) -> str:
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / f"rows_{library}.py"
    script.write_text(ROWS_SCRIPT.format(library=library))
    tests = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    command = [sys.executable, str(script), str(tmp_path / f"out-{library}")]
    if not terminal:  # stdout and stderr to a pipe, as under nohup or SLURM
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    code, output = run_on_a_terminal(command, env=env, timeout=600)
    assert code == 0
    return output


@pytest.mark.parametrize("terminal", [False, True], ids=["off-a-terminal", "on-a-terminal"])
def test_log_and_eval_rows_print_as_transformers_prints_them(tmp_path, terminal):
    ours = _row_keys(_run_rows_script(tmp_path, "trainer", terminal))
    theirs = _row_keys(_run_rows_script(tmp_path, "transformers", terminal))
    # Four training rows, two evaluation rows and the summary, with the same keys in order
    # (Transformers adds its FLOP count to the summary).
    assert [keys for keys in ours] == [[k for k in keys if k != "total_flos"] for keys in theirs]
    assert sum("eval_loss" in keys for keys in ours) == 2
    assert sum("loss" in keys for keys in ours) == 4
