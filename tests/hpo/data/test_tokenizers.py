"""hpo.data.tokenizers: a Transformers tokenizer folder in place of bytes."""

from __future__ import annotations

from helpers.data_study import all_rows, study, write_jsonl

from hpo.data.cache import describe_data, load_datasets


def test_autotokenizer_folder_tokenizes_documents_with_eos(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "[EOS]": 2, "hello": 3, "world": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    ).save_pretrained(tmp_path / "tok")
    docs = write_jsonl(tmp_path / "d.jsonl", [{"text": "hello world"}, {"text": "world hello x"}])
    spec = study(
        tmp_path, files=(docs,), tokenizer=str(tmp_path / "tok"), block_size=3, eval_fraction=0
    )
    train, evals = load_datasets(spec)
    assert evals is None
    assert all_rows(train).tolist() == [[3, 4, 2], [4, 3, 0]]  # eos after each document
    summary = describe_data(spec)
    assert summary["vocab_size"] == 5 and summary["pad_token_id"] == 1
