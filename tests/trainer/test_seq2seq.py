"""Seq2SeqTrainer's generation options on an untrained tiny T5: the same snippet through
`transformers.Seq2SeqTrainer` and ours gives the same generated ids, shapes and losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import trainer

LIBRARIES = pytest.mark.parametrize("lib", [transformers, trainer], ids=["transformers", "ours"])
PAD, EOS = 0, 1


@pytest.fixture(autouse=True)
def _quiet():
    before = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()
    yield
    transformers.utils.logging.set_verbosity(before)


def tiny_t5():
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=16, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
        dropout_rate=0.0, decoder_start_token_id=PAD, pad_token_id=PAD, eos_token_id=EOS,
    )  # fmt: skip
    return transformers.T5ForConditionalGeneration(config)


def rows(count: int = 4) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(count):
        source = torch.randint(2, 16, (5,), generator=generator)
        out.append(
            {
                "input_ids": torch.cat([source, torch.tensor([EOS])]),
                "attention_mask": torch.ones(6, dtype=torch.long),
                "labels": torch.cat([source[:3], torch.tensor([EOS])]),
            }
        )
    return out


def predict(lib, tmp_path, args_kwargs=None, **gen_kwargs):
    args = lib.Seq2SeqTrainingArguments(
        str(tmp_path / lib.__name__), predict_with_generate=True, per_device_eval_batch_size=2,
        report_to="none", disable_tqdm=True, **(args_kwargs or {}),
    )  # fmt: skip
    model = tiny_t5()
    seq2seq = lib.Seq2SeqTrainer(model=model, args=args)
    output = seq2seq.predict(rows(), **gen_kwargs)
    return model, output


def both(tmp_path, args_kwargs=None, **gen_kwargs):
    return [predict(lib, tmp_path, args_kwargs, **gen_kwargs) for lib in (transformers, trainer)]


def assert_same(theirs, ours):
    assert ours.predictions.shape == theirs.predictions.shape
    np.testing.assert_array_equal(ours.predictions, theirs.predictions)
    np.testing.assert_array_equal(ours.label_ids, theirs.label_ids)
    assert ours.metrics["test_loss"] == pytest.approx(theirs.metrics["test_loss"], rel=1e-5)


def test_generation_config_in_the_args_replaces_the_models(tmp_path):
    config = transformers.GenerationConfig(
        max_length=5, decoder_start_token_id=PAD, pad_token_id=PAD, eos_token_id=EOS
    )
    (their_model, theirs), (our_model, ours) = both(tmp_path, {"generation_config": config})
    assert their_model.generation_config.max_length == our_model.generation_config.max_length == 5
    assert_same(theirs, ours)
    assert ours.predictions.shape == (4, 5)  # padded to the config's max_length


def test_args_generation_max_length_and_num_beams(tmp_path):
    (_, theirs), (_, ours) = both(tmp_path, {"generation_max_length": 4, "generation_num_beams": 2})
    assert_same(theirs, ours)
    assert ours.predictions.shape == (4, 20)  # generated 4, padded to the default max_length


def test_gen_kwargs_of_predict_win_over_the_args(tmp_path):
    (_, theirs), (_, ours) = both(
        tmp_path, {"generation_max_length": 4}, max_new_tokens=7, num_beams=3
    )
    assert_same(theirs, ours)


@LIBRARIES
def test_without_predict_with_generate_predictions_are_logits(lib, tmp_path):
    args = lib.Seq2SeqTrainingArguments(str(tmp_path), report_to="none", disable_tqdm=True)
    output = lib.Seq2SeqTrainer(model=tiny_t5(), args=args).predict(rows())
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    assert logits.shape == (4, 4, 16)  # rows, label length, vocabulary


def test_the_constructor_takes_transformers_parameters_in_its_order():
    import inspect

    def parameters(cls):
        return list(inspect.signature(cls.__init__).parameters)

    assert parameters(trainer.Seq2SeqTrainer) == parameters(transformers.Seq2SeqTrainer)
