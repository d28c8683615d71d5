"""`compute_loss` of a mixture-of-experts model (its router's auxiliary loss on top of the
language-model loss) and of a dense one, with and without a token count, as a dict output and
as a tuple (`return_dict=False`): the same public-API snippet runs through
`transformers.Trainer` and ours, and the losses and gradients are compared.

Transformers' own MoE-loss tests check the same single-process values, but patch
`trainer.accelerator.state` to pretend to be several processes and expect the loss multiplied
by their count; this trainer sums gradients across ranks instead (docs/TRAINER.md), so the
comparison here is the part that applies to it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

LIBRARIES = ("transformers", "trainer")
CONFIG = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=128,
    use_cache=False,
    pad_token_id=0,
)


def build_model(dense: bool) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM

    torch.manual_seed(17)
    if dense:
        return LlamaForCausalLM(LlamaConfig(**CONFIG))
    return Qwen3MoeForCausalLM(
        Qwen3MoeConfig(
            **CONFIG,
            moe_intermediate_size=64,
            num_experts=4,
            num_experts_per_tok=1,
            router_aux_loss_coef=0.01,
            output_router_logits=True,
        )
    )


def loss_and_gradients(
    library: str, tmp_path: Any, *, dense: bool, num_items: int | None, **forward: Any
) -> tuple[float, dict[str, torch.Tensor]]:
    if library == "transformers":
        from transformers import Trainer, TrainingArguments
    else:
        from trainer import Trainer, TrainingArguments
    args = TrainingArguments(output_dir=str(tmp_path / library), use_cpu=True, report_to="none")
    trainer = Trainer(model=build_model(dense), args=args)
    input_ids = torch.arange(18).reshape(2, 9) + 3
    inputs = {"input_ids": input_ids, "labels": input_ids.clone(), "attention_mask": torch.ones_like(input_ids)}
    loss = trainer.compute_loss(trainer.model, {**inputs, **forward}, num_items_in_batch=num_items)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.item(), grads


@pytest.mark.parametrize(
    "dense, num_items, forward",
    [
        (False, 64, {}),
        (False, None, {}),
        (False, 64, {"return_dict": False}),
        (False, 64, {"output_router_logits": False}),
        (True, 64, {}),
    ],
    ids=["moe-token-count", "moe-no-count", "moe-tuple", "moe-router-off", "dense"],
)
def test_compute_loss_matches_transformers(tmp_path: Any, dense: bool, num_items: int | None, forward: dict) -> None:
    theirs_loss, theirs_grads = loss_and_gradients("transformers", tmp_path, dense=dense, num_items=num_items, **forward)
    ours_loss, ours_grads = loss_and_gradients("trainer", tmp_path, dense=dense, num_items=num_items, **forward)
    assert ours_loss == pytest.approx(theirs_loss, rel=1e-6)
    assert ours_grads.keys() == theirs_grads.keys()
    for name, grad in theirs_grads.items():
        torch.testing.assert_close(ours_grads[name], grad, atol=1e-6, rtol=1e-5)


def test_router_auxiliary_loss_is_part_of_the_loss(tmp_path: Any) -> None:
    """The comparison above would also hold if both dropped the router loss: check it counts."""
    with_router, _ = loss_and_gradients("trainer", tmp_path, dense=False, num_items=64)
    without_router, _ = loss_and_gradients("trainer", tmp_path, dense=False, num_items=64, output_router_logits=False)
    assert with_router != pytest.approx(without_router, rel=1e-6)
