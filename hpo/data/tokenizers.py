"""Tokenizers of the data cache: text to token-id arrays, by bytes or by a Transformers tokenizer.

Both give `vocab_size`, `pad_token_id`, `encode_stream(texts)` (documents joined into one 1-D
stream, for causal-lm blocks) and `encode_padded(texts, block_size)` (one padded row per text
and its length, for sequence-classification).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpo.errors import HpoError
from hpo.spec import BYTES_TOKENIZER


class ByteTokenizer:
    """UTF-8 bytes as token ids: vocabulary 256, offline, no special tokens; pads with 0 (NUL)."""

    vocab_size = 256
    pad_token_id = 0

    def encode_stream(self, texts: Sequence[str]) -> np.ndarray:
        return np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8)

    def encode_padded(self, texts: Sequence[str], block_size: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.zeros((len(texts), block_size), dtype=np.uint8)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, text in enumerate(texts):
            encoded = np.frombuffer(text.encode("utf-8")[:block_size], dtype=np.uint8)
            ids[row, : len(encoded)] = encoded
            lengths[row] = len(encoded)
        return ids, lengths


class PretrainedTokenizer:
    """An AutoTokenizer (local path, or hub id where the network allows)."""

    def __init__(self, name: str):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise HpoError(
                f"data.tokenizer: {name!r} could not be loaded ({error}); use 'bytes', a local "
                "folder written by save_pretrained, or a hub id where the network allows"
            ) from error
        self.vocab_size = len(self.tokenizer)
        t = self.tokenizer
        pad = t.pad_token_id if t.pad_token_id is not None else t.eos_token_id
        self.pad_token_id = 0 if pad is None else int(pad)

    def encode_stream(self, texts: Sequence[str]) -> np.ndarray:
        """Documents concatenated, each followed by eos when the tokenizer has one."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        pieces = [np.asarray(ids + ([eos] if eos is not None else []), np.int64) for ids in encoded]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.int64)

    def encode_padded(self, texts: Sequence[str], block_size: int) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=block_size, verbose=False)
        ids = np.full((len(texts), block_size), self.pad_token_id, dtype=np.int64)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for row, tokens in enumerate(encoded["input_ids"]):
            ids[row, : len(tokens)] = tokens
            lengths[row] = len(tokens)
        return ids, lengths


def make_tokenizer(name: str) -> ByteTokenizer | PretrainedTokenizer:
    """The tokenizer a study's `data.tokenizer` names: "bytes", or a folder or hub id."""
    return ByteTokenizer() if name == BYTES_TOKENIZER else PretrainedTokenizer(name)
