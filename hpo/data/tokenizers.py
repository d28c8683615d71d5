"""Tokenizers of the data cache: text to token-id arrays, by bytes or by a Transformers tokenizer.

Both give `vocab_size`, `pad_token_id`, `encode_stream(texts)` (documents joined into one 1-D
stream, for causal-lm and masked-lm blocks) and `encode_padded(texts, block_size)` (one padded
row per text and its length, for sequence-classification, regression and seq2seq-lm). A
Transformers tokenizer also gives `encode_words` (token-classification: word labels aligned to
sub-tokens) and is saved with the data cache, where the collators load it from.

`data.tokenizer: {train: wordpiece | bpe, vocab_size: N}` trains one with `tokenizers` on the
study's train rows when the data cache is built (no download), with the special tokens the
tasks need: [PAD] (id 0), [UNK], [CLS] (bos), [SEP] (eos), [MASK].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hpo.errors import HpoError
from hpo.spec import BYTES_TOKENIZER, TrainedTokenizerSpec

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


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

    def __init__(self, name: str = "", *, loaded: Any = None):
        if loaded is not None:
            self.tokenizer = loaded
        else:
            from transformers import AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(name)
            except (OSError, ValueError) as error:
                raise HpoError(
                    f"data.tokenizer: {name!r} could not be loaded ({error}); use 'bytes', a "
                    "local folder written by save_pretrained, or a hub id where the network "
                    "allows"
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

    def encode_words(
        self,
        words: Sequence[Sequence[str]],
        tags: Sequence[Sequence[int]],
        block_size: int,
        *,
        label_all_tokens: bool = False,
        b_to_i: dict[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, lengths, labels) of pre-split words, labels aligned to the sub-tokens.

        As Transformers' run_ner example: a word's first sub-token gets its tag, the others
        -100 (ignored by the loss), or with `label_all_tokens` the word's tag with B- turned
        into I- (`b_to_i`); special tokens and padding get -100.
        """
        encoded = self.tokenizer(
            [list(w) for w in words],
            is_split_into_words=True,
            truncation=True,
            max_length=block_size,
            verbose=False,
        )
        ids = np.full((len(words), block_size), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(words), block_size), -100, dtype=np.int64)
        lengths = np.zeros(len(words), dtype=np.int64)
        for row, tokens in enumerate(encoded["input_ids"]):
            ids[row, : len(tokens)] = tokens
            lengths[row] = len(tokens)
            previous = None
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word != previous:
                    labels[row, position] = tags[row][word]
                elif word is not None and label_all_tokens:
                    tag = tags[row][word]
                    labels[row, position] = (b_to_i or {}).get(tag, tag)
                previous = word
        return ids, lengths, labels

    def save(self, folder: str) -> None:
        self.tokenizer.save_pretrained(folder)


def train_tokenizer(spec: TrainedTokenizerSpec, texts: Sequence[str]) -> PretrainedTokenizer:
    """A WordPiece or BPE tokenizer trained on `texts`, as a Transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())  # [PAD] first: id 0
    options: dict[str, Any] = {
        "vocab_size": spec.vocab_size,
        "min_frequency": spec.min_frequency,
        "special_tokens": specials,
        "show_progress": False,
    }
    if spec.kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
        trainer: Any = trainers.WordPieceTrainer(**options)
        tokenizer.decoder = decoders.WordPiece()
    else:
        tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
        trainer = trainers.BpeTrainer(**options)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator([t for t in texts if t], trainer)
    cls, sep = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=cls, eos_token=sep, **SPECIAL_TOKENS
    )
    return PretrainedTokenizer(loaded=fast)


def make_tokenizer(
    name: str | TrainedTokenizerSpec, texts: Sequence[str] = ()
) -> ByteTokenizer | PretrainedTokenizer:
    """The tokenizer a study's `data.tokenizer` names: "bytes", a folder or hub id, or one
    trained on `texts` (the train rows' text)."""
    if isinstance(name, TrainedTokenizerSpec):
        return train_tokenizer(name, texts)
    return ByteTokenizer() if name == BYTES_TOKENIZER else PretrainedTokenizer(name)
