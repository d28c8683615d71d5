"""evaluate(): the loss, compute_metrics on the predictions, the prefixed metric names."""

from helpers.tiny_models import Regression, RegressionData, quiet_args

from trainer import Trainer


def test_compute_metrics_receives_predictions(tmp_path):
    seen = {}

    def compute_metrics(prediction):
        predictions, labels = prediction
        seen["shape"] = predictions.shape
        return {"mae": float(abs(predictions).mean())}

    trainer = Trainer(
        model=Regression(),
        args=quiet_args(tmp_path, max_steps=1),
        train_dataset=RegressionData(),
        eval_dataset=RegressionData(rows=12),
        compute_metrics=compute_metrics,
    )
    metrics = trainer.evaluate()
    assert seen["shape"] == (12,)
    assert {"eval_loss", "eval_mae", "eval_runtime"} <= set(metrics)
