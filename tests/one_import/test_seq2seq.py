"""A Seq2Seq script (tiny T5 from a config, predict_with_generate) runs unchanged through
`transformers.Seq2SeqTrainer` and through ours: the same generated ids (greedy and beam
search), labels, metric keys and metrics.

The evaluation set splits into equal batches: Transformers 5 averages the batch means of the
evaluation loss without weighting a short last batch by its rows, where ours averages over
rows, so only equal batches give the same loss.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.one_import import SCRIPTS, swapped_source

pytestmark = pytest.mark.slow  # trains twice


def run(implementation: str, output_dir: Path) -> dict[str, Any]:
    source = swapped_source(SCRIPTS / "seq2seq.py", implementation)
    namespace: dict[str, Any] = {"__name__": f"one_import_seq2seq_{implementation}"}
    sys.path.insert(0, str(SCRIPTS))
    try:
        exec(compile(source, str(SCRIPTS / "seq2seq.py"), "exec"), namespace)
        return namespace["main"](str(output_dir / implementation))
    finally:
        sys.path.remove(str(SCRIPTS))


def test_seq2seq_script_generates_the_same_ids_through_both_trainers(tmp_path):
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    ours, theirs = run("ours", tmp_path), run("transformers", tmp_path)
    assert ours["predicted_ids"] == theirs["predicted_ids"]
    assert ours["beam_ids"] == theirs["beam_ids"]
    assert ours["beam_ids"] != ours["predicted_ids"]  # max_length=6 reached generate()
    assert ours["label_ids"] == theirs["label_ids"]
    # Padded to the generation's max_length (20, GenerationConfig's default) with the pad id.
    assert {len(row) for row in ours["predicted_ids"]} == {20}
    assert ours["metric_keys"] == theirs["metric_keys"]
    assert ours["eval_keys"] == theirs["eval_keys"]
    assert ours["token_accuracy"] == theirs["token_accuracy"] > 0.5
    assert ours["eval_token_accuracy"] == theirs["eval_token_accuracy"]
    for key in ("train_loss", "test_loss", "eval_loss", "loss_only"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4), key
    # Without compute_metrics evaluate() computes the loss only, and generates nothing.
    assert ours["loss_only_generates"] is theirs["loss_only_generates"] is False
    assert ours["to_dict_keys"] == theirs["to_dict_keys"]
