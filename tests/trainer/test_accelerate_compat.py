"""`accelerator_config` and `trainer.accelerator` (trainer/accelerate_compat.py): each snippet runs
through `transformers.Trainer` and ours, and what a script reads back is compared, including
Transformers' errors. Where ours differs on purpose (the accumulation Accelerate is told), the
test says so and checks what the loop really does."""

from __future__ import annotations

import json
import subprocess
import sys

import accelerate
import pytest
import torch
import transformers
from accelerate.state import AcceleratorState
from helpers.tiny_models import Regression, RegressionData
from transformers.trainer_pt_utils import AcceleratorConfig

import trainer
from trainer.accelerate_compat import sync_accelerator

LIBRARIES = {"transformers": transformers, "trainer": trainer}
ACCELERATOR_READS = (
    "split_batches",
    "dispatch_batches",
    "even_batches",
    "use_seedable_sampler",
    "non_blocking",
    "num_processes",
    "mixed_precision",
)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    # Accelerate's state is one per process; neither trainer may see another test's.
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def build(library: str, tmp_path, model=None, **kwargs):
    lib = LIBRARIES[library]
    args = lib.TrainingArguments(
        output_dir=str(tmp_path / library),
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        use_cpu=True,
        **kwargs,
    )
    return lib.Trainer(model=model or Regression(), args=args, train_dataset=RegressionData())


def config_json(tmp_path) -> str:
    path = tmp_path / "accelerator_config.json"
    path.write_text(
        json.dumps({"split_batches": True, "even_batches": False, "non_blocking": True})
    )
    return str(path)


CONFIGS = {
    "default": lambda tmp: None,
    "dict": lambda tmp: {
        "split_batches": True,
        "dispatch_batches": True,
        "even_batches": False,
        "use_seedable_sampler": False,
        "gradient_accumulation_kwargs": {"sync_each_batch": True, "adjust_scheduler": False},
    },
    "partial dict": lambda tmp: {"dispatch_batches": False},
    "json file": config_json,
    "dataclass": lambda tmp: AcceleratorConfig(split_batches=True, use_seedable_sampler=False),
}


@pytest.mark.parametrize("form", list(CONFIGS))
@pytest.mark.parametrize("precision", [{}, {"bf16": True}])
def test_the_accelerator_reads_as_transformers_for_every_form_of_the_config(
    tmp_path, form, precision
):
    read = {}
    for library in LIBRARIES:
        built = build(library, tmp_path, accelerator_config=CONFIGS[form](tmp_path), **precision)
        accelerator = built.accelerator
        assert isinstance(accelerator, accelerate.Accelerator)
        assert isinstance(built.args.accelerator_config, (AcceleratorConfig, type(None)))
        plugin = dict(accelerator.gradient_state.plugin_kwargs)
        plugin.pop("num_steps")  # Transformers always tells Accelerate 1 (see below)
        read[library] = {name: getattr(accelerator, name) for name in ACCELERATOR_READS}
        read[library]["device"] = accelerator.device
        read[library]["plugin"] = plugin
        read[library]["data_seed"] = accelerator.dataloader_config.data_seed
        AcceleratorState._reset_state(reset_partial_state=True)
    assert read["trainer"] == read["transformers"]


def test_num_steps_becomes_the_accumulation_the_loop_really_does(tmp_path):
    # Fresh dicts: Transformers writes num_steps=1 into the one it is given.
    config = lambda: {"gradient_accumulation_kwargs": {"num_steps": 4}}  # noqa: E731
    theirs = build("transformers", tmp_path, accelerator_config=config(), max_steps=2)
    ours = build("trainer", tmp_path, accelerator_config=config(), max_steps=2)
    assert theirs.args.gradient_accumulation_steps == ours.args.gradient_accumulation_steps == 4
    # Transformers accumulates itself and tells Accelerate 1; ours tells the truth.
    assert theirs.accelerator.gradient_accumulation_steps == 1
    assert ours.accelerator.gradient_accumulation_steps == 4

    forwards = []
    ours.model.register_forward_hook(lambda *_: forwards.append(1))
    ours.train()
    assert ours.state.global_step == 2
    assert len(forwards) == 2 * 4  # four micro-batches per optimizer step


def test_num_steps_with_accumulation_already_set_is_transformers_error(tmp_path):
    config = {"gradient_accumulation_kwargs": {"num_steps": 10}}
    messages = []
    for library in LIBRARIES:
        with pytest.raises(ValueError) as raised:
            build(library, tmp_path, accelerator_config=config, gradient_accumulation_steps=2)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert "The `AcceleratorConfig`'s `num_steps` is set but" in messages[1]


def test_the_class_instead_of_an_instance_is_refused_as_by_transformers(tmp_path):
    messages = []
    for lib in LIBRARIES.values():
        with pytest.raises(NotImplementedError) as raised:
            lib.TrainingArguments(output_dir=str(tmp_path), accelerator_config=AcceleratorConfig)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert "Tried passing in a callable to `accelerator_config`" in messages[1]


def test_unknown_keys_are_refused_as_by_transformers(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"split_batches": True, "not_a_key": 1}))
    for lib in LIBRARIES.values():
        with pytest.raises(TypeError, match="not_a_key"):
            lib.TrainingArguments(output_dir=str(tmp_path), accelerator_config={"not_a_key": 1})
        with pytest.raises(ValueError, match="unknown keys"):
            lib.TrainingArguments(output_dir=str(tmp_path), accelerator_config=str(path))


def test_use_configured_state_needs_a_state_and_keeps_it(tmp_path):
    config = {"use_configured_state": True}
    for lib in LIBRARIES.values():
        with pytest.raises(ValueError, match="requires a pre-configured"):
            lib.TrainingArguments(output_dir=str(tmp_path), accelerator_config=dict(config))
    # The state made beforehand is kept (not reset): its bf16 is what the accelerator reports,
    # and it must agree with the arguments.
    accelerate.Accelerator(cpu=True, mixed_precision="bf16")
    built = build("trainer", tmp_path, accelerator_config=config, bf16=True)
    assert built.accelerator.mixed_precision == "bf16"
    assert built.accelerator.num_processes == 1
    fp32 = build("trainer", tmp_path, accelerator_config=config)
    with pytest.raises(ValueError, match="differs from the trainer's"):
        _ = fp32.accelerator


def test_the_accelerator_follows_the_accumulation_of_the_run(tmp_path):
    built = build("trainer", tmp_path, max_steps=1)
    assert built.accelerator.gradient_accumulation_steps == 1
    built.args.gradient_accumulation_steps = 3
    built.train()
    assert built.accelerator.gradient_accumulation_steps == 3


def test_sync_builds_nothing_and_a_subclass_may_assign_its_own(tmp_path):
    built = build("trainer", tmp_path)
    sync_accelerator(built)
    assert "accelerator" not in built.__dict__
    built.accelerator = "set by a subclass"
    sync_accelerator(built)
    assert built.accelerator == "set by a subclass"
    rebuilt = build("trainer", tmp_path)
    rebuilt.create_accelerator_and_postprocess()  # Transformers' public method builds it
    assert isinstance(rebuilt.__dict__["accelerator"], accelerate.Accelerator)


def test_arguments_at_their_defaults_import_neither_torch_nor_accelerate(tmp_path):
    code = (
        "import sys; from trainer.args import TrainingArguments; "
        f"args = TrainingArguments(output_dir={str(tmp_path)!r}); "
        "assert args.accelerator_config is None; "
        "print(sorted(m for m in ('torch', 'accelerate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_config_survives_replace_and_to_dict(tmp_path):
    import dataclasses

    args = trainer.TrainingArguments(
        output_dir=str(tmp_path), accelerator_config={"split_batches": True}
    )
    copy = dataclasses.replace(args, learning_rate=1e-3)
    assert copy.accelerator_config.split_batches is True
    assert args.to_dict()["accelerator_config"]["split_batches"] is True
    json.dumps(args.to_dict())


def test_a_plain_trainer_has_an_accelerator_on_first_read(tmp_path):
    built = build("trainer", tmp_path)
    assert "accelerator" not in built.__dict__  # nothing built until read
    assert hasattr(built, "accelerator")
    assert built.accelerator is built.accelerator
    assert built.accelerator.device == torch.device("cpu")
    with pytest.raises(AttributeError, match="no attribute 'not_an_attribute'"):
        _ = built.not_an_attribute


def test_under_torchrun_it_reports_the_ranks_and_refuses_what_the_loop_does_not_do(tmp_path):
    import os
    from pathlib import Path

    helper = Path(__file__).resolve().parents[1] / "helpers" / "ddp_accelerator.py"
    result = tmp_path / "result"
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + [str(helper), str(result)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    for rank in range(2):
        report = json.loads(Path(f"{result}.rank{rank}").read_text())
        assert report["num_processes"] == 2
        assert report["process_index"] == rank
        assert (
            "accelerator_config.split_batches=True is not supported by hpo's trainer"
            in (report["refusal"])
        )
