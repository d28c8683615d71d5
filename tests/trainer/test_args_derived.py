"""Values Transformers derives from other fields when the arguments are created: the same
snippet through `transformers.TrainingArguments` and ours gives the same values."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers

import trainer

LIBRARIES = pytest.mark.parametrize("lib", [transformers, trainer], ids=["transformers", "ours"])


@LIBRARIES
def test_an_eval_strategy_turns_do_eval_on(lib, tmp_path):
    args = lib.TrainingArguments(str(tmp_path), do_eval=False, eval_strategy="steps", eval_steps=5)
    assert args.do_eval is True
    assert lib.TrainingArguments(str(tmp_path)).do_eval is False


@LIBRARIES
def test_a_compile_mode_or_backend_turns_torch_compile_on(lib, tmp_path):
    assert lib.TrainingArguments(str(tmp_path), torch_compile_mode="reduce-overhead").torch_compile
    assert lib.TrainingArguments(str(tmp_path), torch_compile_backend="eager").torch_compile
    args = lib.TrainingArguments(str(tmp_path), torch_compile=True)
    assert args.torch_compile_backend == "inductor"
    assert lib.TrainingArguments(str(tmp_path)).torch_compile_backend is None


@LIBRARIES
def test_use_cpu_turns_pin_memory_off(lib, tmp_path):
    assert lib.TrainingArguments(str(tmp_path), use_cpu=True).dataloader_pin_memory is False


@LIBRARIES
def test_report_to_none_in_a_list(lib, tmp_path):
    assert lib.TrainingArguments(str(tmp_path), report_to=["none"]).report_to == []
    assert lib.TrainingArguments(str(tmp_path), report_to="none").report_to == []


@LIBRARIES
def test_kubeflow_is_reported_to_inside_a_kubeflow_trainjob(lib, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEFLOW_TRAINER_SERVER_URL", "https://trainer.example")
    monkeypatch.delenv("DISABLE_KUBEFLOW_INTEGRATION", raising=False)
    assert lib.TrainingArguments(str(tmp_path), report_to="none").report_to == ["kubeflow"]
    both = lib.TrainingArguments(str(tmp_path), report_to=["kubeflow", "tensorboard"])
    assert both.report_to.count("kubeflow") == 1
    monkeypatch.setenv("DISABLE_KUBEFLOW_INTEGRATION", "true")
    assert lib.TrainingArguments(str(tmp_path), report_to="none").report_to == []


@LIBRARIES
def test_a_dtype_field_of_a_subclass_is_its_name_in_to_dict(lib, tmp_path):
    @dataclasses.dataclass
    class WithDtype(lib.TrainingArguments):
        dtype: torch.dtype = torch.float32

    for dtype in ("float32", "bfloat16", "int64", "bool"):
        args = WithDtype(str(tmp_path), dtype=getattr(torch, dtype))
        assert args.to_dict()["dtype"] == dtype
        assert f'"dtype": "{dtype}"' in args.to_json_string()
