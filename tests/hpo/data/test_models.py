"""hpo.data.models: model_init from a config, a pretrained folder or a factory; model.* overrides."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import optuna
import pytest
import torch
from helpers.study_files import tiny_gpt2_config

from hpo.data.models import build_model_init, model_overrides
from hpo.errors import HpoError
from hpo.spec import ModelSpec

TINY_GPT2 = tiny_gpt2_config()


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def optuna_trial(**fixed: int) -> optuna.Trial:
    """A real trial whose params are `fixed` (each int dimension has one value)."""
    study = optuna.create_study()
    trial = study.ask()
    for name, value in fixed.items():
        trial.suggest_int(name, value, value)
    return trial


def test_config_model_trains_on_byte_tokens():
    model_init = build_model_init(ModelSpec(config=TINY_GPT2))
    model = model_init()
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.config.n_layer == 2 and model.config.vocab_size == 256
    # gpt2's default bos/eos (50256) lie outside a 256 vocabulary: dropped, not kept
    assert model.config.bos_token_id is None and model.config.eos_token_id is None
    ids = torch.randint(0, 256, (2, 16))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_each_call_builds_a_fresh_model():
    model_init = build_model_init(ModelSpec(config=TINY_GPT2))
    first, second = model_init(), model_init(None)
    assert first is not second
    with torch.no_grad():
        first.transformer.wte.weight.zero_()
    assert second.transformer.wte.weight.abs().sum() > 0


def test_model_params_of_an_optuna_trial_override_the_config():
    model_init = build_model_init(ModelSpec(config=TINY_GPT2))
    base = model_init()
    deeper = model_init(optuna_trial(**{"model.n_layer": 4, "warmup_steps": 3}))
    assert deeper.config.n_layer == 4
    assert n_params(deeper) > n_params(base)
    # the override is per trial: the next trial without it gets the study's config again
    assert model_init().config.n_layer == 2


def test_model_params_of_a_ray_config_dict_override_the_config():
    model_init = build_model_init(ModelSpec(config=TINY_GPT2))
    model = model_init({"model.n_embd": np.int64(64), "learning_rate": 1e-3})
    assert model.config.n_embd == 64 and type(model.config.n_embd) is int
    assert model.transformer.wte.weight.shape == (256, 64)


def test_model_overrides_reads_trials_dicts_and_nested_dicts():
    assert model_overrides(None) == {}
    assert model_overrides({"model.n_layer": 3, "learning_rate": 0.1}) == {"n_layer": 3}
    assert model_overrides({"model": {"n_head": 4}}) == {"n_head": 4}
    frozen = optuna_trial(**{"model.n_layer": 1})
    assert model_overrides(frozen) == {"n_layer": 1}
    with pytest.raises(TypeError, match="expected None, an optuna Trial or a dict"):
        model_overrides(42)


def test_sequence_classification_model_from_config():
    spec = ModelSpec(task="sequence-classification", config=TINY_GPT2, num_labels=3)
    model = build_model_init(spec, pad_token_id=0)()
    assert type(model).__name__ == "GPT2ForSequenceClassification"
    assert model.config.num_labels == 3 and model.config.pad_token_id == 0
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])  # padded rows, batch > 1
    out = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)


def test_pretrained_folder_is_loaded_once_and_copied(tmp_path):
    saved = build_model_init(ModelSpec(config=TINY_GPT2))()
    saved.save_pretrained(tmp_path / "tiny")
    model_init = build_model_init(ModelSpec(pretrained=str(tmp_path / "tiny")))
    first, second = model_init(), model_init()
    assert torch.equal(first.transformer.wte.weight, saved.transformer.wte.weight)
    with torch.no_grad():
        first.transformer.wte.weight.zero_()
    assert torch.equal(second.transformer.wte.weight, saved.transformer.wte.weight)
    shallower = model_init({"model.n_layer": 1})
    assert shallower.config.n_layer == 1 and len(shallower.transformer.h) == 1


def test_config_beside_pretrained_overrides_the_saved_config(tmp_path):
    build_model_init(ModelSpec(config=TINY_GPT2))().save_pretrained(tmp_path / "tiny")
    spec = ModelSpec(pretrained=str(tmp_path / "tiny"), config={"resid_pdrop": 0.0})
    model = build_model_init(spec)()
    assert model.config.resid_pdrop == 0.0 and model.config.n_embd == 32


def test_missing_pretrained_folder_is_named(tmp_path):
    model_init = build_model_init(ModelSpec(pretrained=str(tmp_path / "absent")))
    with pytest.raises(HpoError, match="model.pretrained: .*absent"):
        model_init()


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch

            def mlp(width=4, depth=1, **config):
                layers = [torch.nn.Linear(width, width) for _ in range(depth)]
                return torch.nn.Sequential(*layers)

            def not_a_module(**config):
                return "oops"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_models"
    sys.modules.pop("my_models", None)


def test_factory_gets_the_config_and_the_trial_overrides(factory_module):
    spec = ModelSpec(factory=f"{factory_module}:mlp", config={"width": 8, "depth": 1})
    model_init = build_model_init(spec)
    assert n_params(model_init()) == 8 * 8 + 8
    assert n_params(model_init({"model.depth": 3})) == 3 * (8 * 8 + 8)


def test_factory_module_in_the_current_directory_is_found(tmp_path, monkeypatch):
    # as under the `hpo` console script: the current directory is not on sys.path
    (tmp_path / "cwd_models.py").write_text(
        "import torch\ndef one(**c): return torch.nn.Linear(2, 2)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        assert n_params(build_model_init(ModelSpec(factory="cwd_models:one"))()) == 6
    finally:
        sys.modules.pop("cwd_models", None)
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_colon_here", "expected 'package.module:function'"),
        (
            "surely_absent_pkg.models:make",
            "module 'surely_absent_pkg.models' could not be imported",
        ),
        ("my_models:absent_fn", "module 'my_models' has no function 'absent_fn'"),
    ],
)
def test_factory_errors_name_the_module_or_the_function(factory_module, ref, message):
    with pytest.raises(HpoError, match=message):
        build_model_init(ModelSpec(factory=ref))


def test_factory_must_return_a_module(factory_module):
    model_init = build_model_init(ModelSpec(factory="my_models:not_a_module"))
    with pytest.raises(HpoError, match="returned str; expected a torch.nn.Module"):
        model_init()


def test_bad_model_specs_fail_before_any_trial():
    with pytest.raises(
        HpoError, match="'gtp2' is not a transformers model type; did you mean 'gpt2'"
    ):
        build_model_init(ModelSpec(config={**TINY_GPT2, "model_type": "gtp2"}))
    with pytest.raises(HpoError, match="model.config: gpt2 rejects it.*n_layer"):
        build_model_init(ModelSpec(config={**TINY_GPT2, "n_layer": "two"}))
    with pytest.raises(HpoError, match="pretrained or factory, not both"):
        build_model_init(ModelSpec(pretrained="some/folder", factory="a.b:c"))
    with pytest.raises(HpoError, match="no model; give config, pretrained or factory"):
        build_model_init(ModelSpec())
    with pytest.raises(HpoError, match="model.task: 'translation'"):
        build_model_init(ModelSpec(config=TINY_GPT2, task="translation"))


def folder_with_its_own_code(folder) -> None:
    """A saved tiny GPT-2 whose config names a model class in the folder's own Python file
    (as a hub repository with custom code does); importing that file leaves a marker."""
    import json

    build_model_init(ModelSpec(config=TINY_GPT2))().save_pretrained(folder)
    marker = folder / "code-ran"  # transformers runs a copy of the file from its own cache
    (folder / "custom_gpt.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from transformers import GPT2LMHeadModel

            Path({str(marker)!r}).write_text("yes")


            class CustomGPT(GPT2LMHeadModel):
                pass
            """
        )
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "custom_gpt.CustomGPT"}
    (folder / "config.json").write_text(json.dumps(config))


def test_trust_remote_code_reaches_from_pretrained_only_when_set(tmp_path):
    folder = tmp_path / "remote"
    folder_with_its_own_code(folder)
    # Off (the default): transformers builds its own GPT-2 class; the folder's code never ran.
    model = build_model_init(ModelSpec(pretrained=str(folder)))()
    assert type(model).__name__ == "GPT2LMHeadModel" and not (folder / "code-ran").exists()
    model = build_model_init(ModelSpec(pretrained=str(folder), trust_remote_code=True))()
    assert type(model).__name__ == "CustomGPT" and (folder / "code-ran").exists()
