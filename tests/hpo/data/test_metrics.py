"""hpo.data.metrics: the built-in metrics of each task, through a real Trainer where it matters.

Expected values are worked out by hand on small cases (not recomputed with the same library
calls), and the language-model metrics are checked on a real tiny GPT-2 against the loss the
trainer reports and against Transformers' own Trainer.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers.study_files import tiny_gpt2_config
from transformers.trainer_utils import EvalPrediction

from hpo.data.metrics import (
    METRICS_BY_TASK,
    ComputeMetrics,
    ReduceTokenLogits,
    check_objective_names,
    metric_functions,
    produced_metrics,
)
from hpo.errors import HpoError
from hpo.spec import TASKS


def one_hot_logits(classes: list[int], n_classes: int) -> np.ndarray:
    logits = np.full((len(classes), n_classes), -1.0, dtype=np.float32)
    logits[np.arange(len(classes)), classes] = 1.0
    return logits


def compute(task: str, names: list[str], predictions, labels, label_names=None) -> dict:
    functions = metric_functions(task, names, label_names)
    return functions.compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))


def test_the_table_covers_every_task_of_the_study_file_and_the_new_ones():
    assert set(TASKS) <= set(METRICS_BY_TASK)
    assert {
        "causal-lm",
        "sequence-classification",
        "regression",
        "token-classification",
        "masked-lm",
        "seq2seq-lm",
    } == set(METRICS_BY_TASK)
    assert produced_metrics(("accuracy", "f1"))[:3] == ("eval_loss", "eval_accuracy", "eval_f1")


def test_classification_metrics_with_their_averaging():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = [0, 0, 1, 1, 2, 2]
    names = ["accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "recall"]
    values = compute("sequence-classification", names, one_hot_logits(predicted, 3), labels)
    # Per class: F1 0.8, 0.5, 2/3; precision 1, 0.5, 0.5; recall 2/3, 0.5, 1; support 3, 2, 1.
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["f1"] == values["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert values["f1_micro"] == pytest.approx(4 / 6)
    assert values["f1_weighted"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert values["precision"] == pytest.approx(2 / 3)
    assert values["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_binary_averaging_and_matthews_correlation():
    labels = np.array([0, 1, 1, 1])
    logits = one_hot_logits([0, 1, 0, 1], 2)  # tp 2, tn 1, fp 0, fn 1
    names = ["f1_binary", "precision_binary", "recall_binary", "matthews_correlation"]
    values = compute("sequence-classification", names, logits, labels)
    assert values["f1_binary"] == pytest.approx(0.8)
    assert values["precision_binary"] == pytest.approx(1.0)
    assert values["recall_binary"] == pytest.approx(2 / 3)
    assert values["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))


def test_binary_averaging_of_three_labels_says_which_averages_work():
    logits = one_hot_logits([0, 1, 2], 3)
    with pytest.raises(HpoError, match="f1_binary: .*use f1_macro, f1_micro or f1_weighted"):
        compute("sequence-classification", ["f1_binary"], logits, np.array([0, 1, 2]))


def test_regression_metrics():
    predictions = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    labels = np.array([1.0, 2.0, 3.0, 5.0], dtype=np.float32)
    values = compute("regression", ["mse", "mae", "pearson", "spearman"], predictions, labels)
    assert values["mse"] == pytest.approx(0.25)
    assert values["mae"] == pytest.approx(0.25)
    assert values["pearson"] == pytest.approx(6.5 / math.sqrt(5 * 8.75), rel=1e-6)
    assert values["spearman"] == pytest.approx(1.0)


def test_token_classification_ignores_minus_100_and_scores_entities_with_seqeval():
    names = ["O", "B-PER", "I-PER", "B-LOC"]
    # Words: Ada(B-PER, two sub-tokens) Lovelace(I-PER) visited(O) Paris(B-LOC); the model
    # misses Paris and says B-LOC on the second sub-token of Ada, which is not scored.
    labels = np.array([[1, -100, 2, 0, 3, -100]])
    predicted = torch.tensor([[1, 3, 2, 0, 0, 0]])
    logits = torch.nn.functional.one_hot(predicted, 4).float()
    functions = metric_functions(
        "token-classification",
        ["accuracy", "seqeval_precision", "seqeval_recall", "seqeval_f1"],
        label_names=names,
    )
    ids = functions.preprocess_logits_for_metrics(logits, torch.from_numpy(labels))
    assert ids.shape == (1, 6)  # the argmax ids, not the logits
    values = functions.compute_metrics(EvalPrediction(predictions=ids.numpy(), label_ids=labels))
    assert values["accuracy"] == pytest.approx(3 / 4)
    assert values["seqeval_precision"] == pytest.approx(1.0)  # the one entity found is PER
    assert values["seqeval_recall"] == pytest.approx(0.5)  # of PER and LOC
    assert values["seqeval_f1"] == pytest.approx(2 / 3)


def test_seqeval_metrics_need_the_label_names():
    with pytest.raises(HpoError, match="seqeval_f1 need the label names"):
        metric_functions("token-classification", ["seqeval_f1"])


def test_a_metric_of_another_task_is_refused_with_the_task_list():
    with pytest.raises(HpoError, match="mse cannot be computed for task 'causal-lm'.*accuracy"):
        metric_functions("causal-lm", ["mse"])


@pytest.mark.parametrize("task", ["masked-lm", "seq2seq-lm"])
def test_aligned_language_models_score_only_labelled_tokens(task):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, 3, -100, 7, -100], [1, -100, -100, -100, 10]])
    functions = metric_functions(task, ["accuracy", "perplexity"])
    ids, token_loss = functions.preprocess_logits_for_metrics(logits, labels)
    values = functions.compute_metrics(
        EvalPrediction(predictions=(ids.numpy(), token_loss.numpy()), label_ids=labels.numpy())
    )
    scored = labels != -100
    expected_accuracy = (logits.argmax(-1)[scored] == labels[scored]).float().mean().item()
    mean_loss = torch.nn.functional.cross_entropy(logits[scored], labels[scored]).item()
    assert values["accuracy"] == pytest.approx(expected_accuracy)
    assert values["perplexity"] == pytest.approx(math.exp(mean_loss), rel=1e-5)


class Blocks(torch.utils.data.Dataset):
    """Fixed blocks of byte ids, labels == input_ids (the model shifts them)."""

    def __init__(self, n: int, block: int) -> None:
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, 256, (n, block), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


@pytest.fixture
def tiny_lm():
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(**tiny_gpt2_config(n_positions=32))
    return AutoModelForCausalLM.from_config(config).eval()


def test_causal_lm_accuracy_is_shifted_and_perplexity_is_exp_of_the_loss(tiny_lm, tmp_path):
    from trainer import Trainer, TrainingArguments

    data = Blocks(10, 16)
    functions = metric_functions("causal-lm", ["accuracy", "perplexity"])
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none"
    )
    trainer = Trainer(
        model=tiny_lm,
        args=args,
        compute_metrics=functions.compute_metrics,
        preprocess_logits_for_metrics=functions.preprocess_logits_for_metrics,
    )
    metrics = trainer.evaluate(data)
    with torch.no_grad():
        logits = tiny_lm(input_ids=data.ids).logits
    hits = logits[:, :-1].argmax(-1) == data.ids[:, 1:]
    assert metrics["eval_accuracy"] == pytest.approx(hits.float().mean().item())
    # Every batch holds the same number of labelled tokens: the two means agree.
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]), rel=1e-4)
    # The evaluation kept ids and per-token losses, never a vocabulary's worth per token.
    predicted = trainer.predict(data).predictions
    assert [p.shape for p in predicted] == [(10, 16), (10, 16)]


def test_the_same_functions_give_the_same_metrics_in_transformers_trainer(tiny_lm, tmp_path):
    pytest.importorskip("accelerate")
    import transformers

    from trainer import Trainer, TrainingArguments

    data = Blocks(10, 16)
    functions = metric_functions("causal-lm", ["accuracy", "perplexity"])
    results = []
    for trainer_class, args_class in (
        (Trainer, TrainingArguments),
        (transformers.Trainer, transformers.TrainingArguments),
    ):
        args = args_class(
            output_dir=str(tmp_path / trainer_class.__module__),
            per_device_eval_batch_size=4,
            report_to="none",
            use_cpu=True,
        )
        trainer = trainer_class(
            model=copy.deepcopy(tiny_lm),
            args=args,
            compute_metrics=functions.compute_metrics,
            preprocess_logits_for_metrics=functions.preprocess_logits_for_metrics,
        )
        results.append(trainer.evaluate(data))
    ours, theirs = results
    assert ours["eval_accuracy"] == pytest.approx(theirs["eval_accuracy"])
    assert ours["eval_perplexity"] == pytest.approx(theirs["eval_perplexity"], rel=1e-5)


def test_reduce_token_logits_takes_the_first_of_several_outputs():
    logits = torch.randn(2, 4, 7)
    reduce = ReduceTokenLogits(shift=True, with_loss=False)
    ids = reduce((logits, "past_key_values"), torch.zeros(2, 4, dtype=torch.long))
    assert torch.equal(ids, logits.argmax(-1))


def test_a_user_compute_metrics_is_checked_for_the_objective_at_its_first_call():
    def user_metrics(prediction):
        return {"acc": 1.0}

    checked = check_objective_names(
        user_metrics, [("objective.metric", "eval_accuracy")], "mine:metrics"
    )
    with pytest.raises(HpoError) as caught:
        checked(EvalPrediction(predictions=np.zeros(1), label_ids=np.zeros(1)))
    message = str(caught.value)
    assert "objective.metric 'eval_accuracy' is not among the metrics" in message
    assert "eval_loss, eval_acc" in message and "mine:metrics" in message
    ok = check_objective_names(user_metrics, [("objective.metric", "acc")], "mine:metrics")
    assert ok(EvalPrediction(predictions=np.zeros(1), label_ids=np.zeros(1))) == {"acc": 1.0}


def test_compute_metrics_objects_pickle():
    # Ray ships a trial's Trainer arguments to worker processes.
    import pickle

    compute = ComputeMetrics("sequence-classification", ["accuracy"])
    again = pickle.loads(pickle.dumps(compute))
    logits = one_hot_logits([1, 0], 2)
    assert again(EvalPrediction(predictions=logits, label_ids=np.array([1, 1]))) == {
        "accuracy": 0.5
    }
