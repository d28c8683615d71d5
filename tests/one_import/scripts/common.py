"""Tiny models, a word-level tokenizer and data for the one-import scripts: built from configs
and word lists here (no downloads). The scripts import this module as `common`."""

from __future__ import annotations

import random

import torch

WORDS = ["good", "bad", "fine", "awful", "great", "poor", "nice", "sad", "the", "a", "film", "is"]
POSITIVE = {"good", "fine", "great", "nice"}


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{word: i + 2 for i, word in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")


def sentences(rows: int, seed: int) -> list[tuple[str, int]]:
    """Sentences of 3 to 9 words (so batches need padding), labelled 1 when a positive word
    outnumbers the negative ones."""
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        positive = sum(word in POSITIVE for word in words)
        negative = sum(word in {"bad", "awful", "poor", "sad"} for word in words)
        out.append((" ".join(words), int(positive > negative)))
    return out


def classification_rows(tok, rows: int, seed: int) -> list[dict]:
    """Tokenized rows of different lengths with a `label` (what datasets.map would give)."""
    return [{**tok(text), "label": label} for text, label in sentences(rows, seed)]


def bert_classifier(seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(WORDS) + 2,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,  # no dropout: both trainers see the same numbers
        attention_probs_dropout_prob=0.0,
        num_labels=2,
        pad_token_id=0,
    )
    return BertForSequenceClassification(config)


def gpt2_lm(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=64,
        n_positions=16,
        n_embd=16,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def lm_rows(rows: int, seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 64, (rows, 16), generator=generator)
    return [{"input_ids": row, "labels": row.clone()} for row in ids]


def losses(log_history: list[dict]) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in log_history if "loss" in row}


def rates(log_history: list[dict]) -> dict[int, float]:
    return {row["step"]: row["learning_rate"] for row in log_history if "learning_rate" in row}
