"""Tiny real models and data for the trainer tests (no downloads), and the arguments of a
quiet run of them."""

from __future__ import annotations

from typing import Any

import torch

from trainer import TrainingArguments

VOCAB = 64
SEQ = 16


def gpt2(n_layer: int = 2, dropout: float = 0.1, seed: int | None = None) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if seed is not None:
        torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=SEQ,
        n_embd=16,
        n_layer=n_layer,
        n_head=2,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=0,
        eos_token_id=0,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


class TokenDataset(torch.utils.data.Dataset):
    """Map-style dict samples; rows may carry -100 padding in their labels."""

    def __init__(self, rows: int = 40, seed: int = 0, pad_every: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, VOCAB, (rows, SEQ), generator=generator)
        self.labels = self.ids.clone()
        if pad_every:
            for row in range(0, rows, pad_every):
                self.labels[row, SEQ // 2 + row % (SEQ // 2) :] = -100

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


class Regression(torch.nn.Module):
    """A Linear whose forward returns {'loss': mse} like any plain nn.Module may."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        prediction = self.linear(x).squeeze(-1)
        return {"loss": torch.nn.functional.mse_loss(prediction, y), "logits": prediction}


class RegressionData(torch.utils.data.Dataset):
    def __init__(self, rows: int = 32, features: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(rows, features, generator=generator)
        self.y = self.x @ torch.arange(1.0, features + 1) + 0.5

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "y": self.y[index]}


def quiet_args(output_dir: Any, **kwargs: Any) -> TrainingArguments:
    """Arguments for a tiny run: no progress bar, no checkpoints, a log row every step."""
    base: dict[str, Any] = dict(
        output_dir=str(output_dir), disable_tqdm=True, save_strategy="no", logging_steps=1
    )
    base.update(kwargs)
    return TrainingArguments(**base)
