"""Each function of trainer.compat against the installed torch and ray: a release that moves
what one of them relies on fails here, by name, before it fails a training run."""

import subprocess
import sys
import warnings

import pytest
import torch

from trainer.compat import in_tune_session, reschedule_from, uncompiled


def test_uncompiled_finds_the_module_torch_compile_wrapped():
    model = torch.nn.Linear(2, 1)
    compiled = torch.compile(model)  # wrapping compiles nothing until the first call
    assert compiled is not model
    assert uncompiled(compiled) is model
    assert uncompiled(model) is model


def test_reschedule_from_recomputes_every_rate_at_the_same_position():
    from transformers.optimization import get_scheduler

    parameters = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": parameters[:1]}, {"params": parameters[1:]}], lr=0.1)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replayed step must not warn
        reschedule_from(scheduler, 0.4)
    expected = 0.4 * scheduler.lr_lambdas[0](5)
    assert scheduler.last_epoch == 5
    assert scheduler.base_lrs == [0.4, 0.4]
    assert [group["lr"] for group in optimizer.param_groups] == [expected, expected]
    assert scheduler.get_last_lr() == [expected, expected]
    optimizer.step()
    scheduler.step()  # and the schedule goes on from there with the new base
    assert scheduler.get_last_lr() == [0.4 * scheduler.lr_lambdas[0](6)] * 2


def test_in_tune_session_is_false_outside_a_trial_and_loads_no_ray():
    # a fresh process: this one may have loaded ray already
    code = (
        "import sys, warnings\n"
        "from trainer.compat import in_tune_session\n"
        "assert in_tune_session() is False\n"
        "assert 'ray' not in sys.modules\n"
        "import ray.tune\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert in_tune_session() is False\n"
        "assert not caught, [str(w.message) for w in caught]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_in_tune_session_is_true_inside_a_tune_trial(ray_local, tmp_path):
    from ray import tune

    def trainable(config):
        from trainer.compat import in_tune_session

        tune.report({"inside": int(in_tune_session())})

    tuner = tune.Tuner(
        trainable,
        run_config=tune.RunConfig(name="compat", storage_path=str(tmp_path), verbose=0),
    )
    result = tuner.fit().get_best_result(metric="inside", mode="max")
    assert result.error is None and result.metrics["inside"] == 1
    assert in_tune_session() is False  # this process, the driver, is not a trial


def test_generation_default_max_length_is_the_documented_one():
    from trainer.compat import generation_default

    # GenerationConfig's documented default max_length; Seq2SeqTrainer pads its predictions to
    # it (tests/trainer/test_seq2seq.py compares the padded ids with transformers').
    assert generation_default("max_length") == 20
