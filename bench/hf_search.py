"""The peer: what a Transformers user runs instead of `hpo run`, as one plain script.

    python bench/hf_search.py STUDY.yaml --backend optuna --storage sqlite:///a.db
    python bench/hf_search.py STUDY.yaml --backend ray --ray-dir DIR

`transformers.Trainer.hyperparameter_search` at its defaults, on the task of the study file
(the same space, TrainingArguments, GPT-2 config and corpus that `hpo run` reads):
- `--backend optuna`: its default pruner (optuna.create_study's MedianPruner), a TPE seeded with
  the study's `sampler.seed`, one trial at a time in this process. `storage=` and `study_name=`
  go through hyperparameter_search's keyword arguments to optuna.create_study, so the trials'
  timestamps land in an SQLite file that bench/hpo_vs_transformers.py reads afterwards.
- `--backend ray`: Ray Tune's default random search (seeded) and `ASHAScheduler` passed as
  `scheduler=`, the usual way to prune on that backend; one CPU per trial (transformers'
  default), results under `--ray-dir` (tune.run's `storage_path`).

It imports torch, transformers, numpy, yaml and the backend, never `hpo`: its start-up is the
peer's own. The last line it prints is `best: {json}`, the BestRun it got back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# hpo's split of a corpus into train and eval blocks uses this seed (hpo.data.task_arrays);
# tests/test_bench.py checks that the blocks below equal the ones `hpo run` trains on.
SPLIT_SEED = 0


def corpus_texts(name: str) -> list[str]:
    """The built-in corpus. Only "pydoc-topics" exists: CPython's documentation topics."""
    if name != "pydoc-topics":
        raise SystemExit(f"hf_search: unknown corpus {name!r}; this script knows 'pydoc-topics'")
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def block_arrays(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) byte blocks: the documents joined by newlines, cut into block_size rows, a
    seeded eval_fraction held out (and a seeded max_eval_samples subset, when set)."""
    block = int(data.get("block_size", 128))
    fraction = float(data.get("eval_fraction", 0.1))
    text = "\n".join(corpus_texts(data["corpus"])).encode("utf-8")
    stream = np.frombuffer(text, np.uint8)
    blocks = stream[: len(stream) // block * block].reshape(-1, block)
    n_eval = min(len(blocks) - 1, max(1, round(len(blocks) * fraction)))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(blocks))
    train, held_out = blocks[np.sort(order[n_eval:])], blocks[np.sort(order[:n_eval])]
    limit = data.get("max_eval_samples")
    if limit is not None and limit < len(held_out):
        chosen = np.random.default_rng(SPLIT_SEED).permutation(len(held_out))[:limit]
        held_out = held_out[np.sort(chosen)]
    return train, held_out


class Blocks:
    """A map-style dataset of {"input_ids", "labels"} rows (causal LM: labels = inputs)."""

    def __init__(self, rows: np.ndarray) -> None:
        import torch

        self.rows = torch.from_numpy(rows.astype(np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        return {"input_ids": row, "labels": row}


class ModelInit:
    """A fresh GPT-2 from its config for every trial (a class, so Ray can pickle it)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = dict(config)

    def __call__(self) -> Any:
        from transformers import AutoConfig, AutoModelForCausalLM

        settings = dict(self.config)
        return AutoModelForCausalLM.from_config(
            AutoConfig.for_model(settings.pop("model_type"), **settings)
        )


def optuna_space(space: dict[str, dict[str, Any]]):
    """hp_space for backend="optuna": a function of the optuna.Trial."""

    def hp_space(trial: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, dim in space.items():
            log = bool(dim.get("log", False))
            if dim["type"] == "float":
                params[name] = trial.suggest_float(name, dim["low"], dim["high"], log=log)
            elif dim["type"] == "int":
                params[name] = trial.suggest_int(name, dim["low"], dim["high"], log=log)
            else:
                params[name] = trial.suggest_categorical(name, list(dim["choices"]))
        return params

    return hp_space


def ray_space(space: dict[str, dict[str, Any]]):
    """hp_space for backend="ray": transformers calls it once, with None, for tune's config."""
    from ray import tune

    def hp_space(_trial: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, dim in space.items():
            log = bool(dim.get("log", False))
            if dim["type"] == "float":
                sample = tune.loguniform if log else tune.uniform
                params[name] = sample(dim["low"], dim["high"])
            elif dim["type"] == "int":
                # tune.randint's upper bound is exclusive; the study's `high` is inclusive
                sample = tune.lograndint if log else tune.randint
                params[name] = sample(dim["low"], dim["high"] + 1)
            else:
                params[name] = tune.choice(list(dim["choices"]))
        return params

    return hp_space


def check_study(doc: dict[str, Any]) -> None:
    """This script searches TrainingArguments fields of a causal-lm study on the built-in
    corpus with the bytes tokenizer; anything else is refused by name, not run differently."""
    if doc["model"].get("task") != "causal-lm" or doc["data"].get("tokenizer") != "bytes":
        raise SystemExit("hf_search: only a causal-lm study with `data.tokenizer: bytes` runs here")
    for name, dim in doc["space"].items():
        if name.startswith("model.") or dim.get("type") not in ("float", "int", "categorical"):
            raise SystemExit(f"hf_search: space key {name!r} is not a TrainingArguments field")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="the study file (bench/studies/*.yaml)")
    parser.add_argument("--backend", choices=["optuna", "ray"], required=True)
    parser.add_argument("--storage", help="optuna: the storage URL its trials are written to")
    parser.add_argument("--ray-dir", type=Path, help="ray: where Ray Tune writes its results")
    opts = parser.parse_args(argv)
    doc = yaml.safe_load(opts.study.read_text(encoding="utf-8"))
    check_study(doc)

    import transformers
    from transformers import Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    train, held_out = block_arrays(doc["data"])
    training = {"output_dir": "hf_search_output", **doc["training"]}
    args = TrainingArguments(
        save_strategy="no",  # no checkpoints: the cheapest setting transformers has
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        **training,
    )
    trainer = Trainer(
        model_init=ModelInit(doc["model"]["config"]),
        args=args,
        train_dataset=Blocks(train),
        eval_dataset=Blocks(held_out),
    )
    n_trials = int(doc["budget"]["n_trials"])
    seed = int(doc.get("sampler", {}).get("seed", 0))
    direction = doc["objective"].get("direction", "minimize")
    if opts.backend == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        best = trainer.hyperparameter_search(
            hp_space=optuna_space(doc["space"]),
            backend="optuna",
            n_trials=n_trials,
            direction=direction,
            # through **kwargs to optuna.create_study; its pruner stays the default
            sampler=optuna.samplers.TPESampler(seed=seed),
            storage=opts.storage,
            study_name=doc["name"],
        )
    else:
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator

        evaluations = max(
            1, int(doc["training"]["max_steps"]) // int(doc["training"]["eval_steps"])
        )
        best = trainer.hyperparameter_search(
            hp_space=ray_space(doc["space"]),
            backend="ray",
            n_trials=n_trials,
            direction=direction,
            # through **kwargs to ray.tune.run: ASHA at its defaults, its horizon the number of
            # evaluations a trial reports (one training_iteration each)
            scheduler=ASHAScheduler(metric="objective", mode=direction[:3], max_t=evaluations),
            search_alg=BasicVariantGenerator(random_state=seed),  # the default search, seeded
            storage_path=str(opts.ray_dir.resolve()),
            name=doc["name"],
        )
    print("best: " + json.dumps({"objective": best.objective, "params": best.hyperparameters}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
