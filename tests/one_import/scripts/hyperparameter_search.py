"""A Transformers user's hyperparameter search: a tiny GPT-2, an optuna space, a pruner.

Runs unchanged through transformers.Trainer and through ours; only the import line differs
(tests/one_import/test_scripts.py swaps it). Prints the BestRun and what the study saw as JSON.
"""

import json
import os
import sys

import optuna
import torch
from transformers import Trainer, TrainingArguments  # the one import
from transformers.models.gpt2 import GPT2Config, GPT2LMHeadModel

OUTPUT_DIR = sys.argv[1]
os.makedirs(OUTPUT_DIR, exist_ok=True)
STORAGE = f"sqlite:///{os.path.abspath(OUTPUT_DIR)}/search.db"


class Tokens(torch.utils.data.Dataset):
    def __init__(self, rows, seed):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 64, (rows, 16), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def model_init(trial):
    n_layer = trial.suggest_int("n_layer", 1, 2) if trial is not None else 1
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=n_layer, n_head=2)
    return GPT2LMHeadModel(config)


def hp_space(trial):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "per_device_train_batch_size": trial.suggest_categorical(
            "per_device_train_batch_size", [4, 8]
        ),
    }


def compute_objective(metrics):
    return metrics["eval_loss"]


args = TrainingArguments(
    output_dir=OUTPUT_DIR,
    max_steps=8,
    eval_strategy="steps",
    eval_steps=2,
    logging_steps=2,
    save_strategy="no",
    report_to="none",
    disable_tqdm=True,
    use_cpu=True,
)
trainer = Trainer(
    model_init=model_init,
    args=args,
    train_dataset=Tokens(48, seed=0),
    eval_dataset=Tokens(16, seed=1),
)
optuna.logging.set_verbosity(optuna.logging.WARNING)
best = trainer.hyperparameter_search(
    hp_space=hp_space,
    compute_objective=compute_objective,
    n_trials=4,
    direction="minimize",
    backend="optuna",
    storage=STORAGE,  # both pass these on to optuna.create_study
    study_name="search",
    sampler=optuna.samplers.TPESampler(seed=0),
    # Prunes a trial whose value is worse than the first trial's at the same step.
    pruner=optuna.pruners.PercentilePruner(1.0, n_startup_trials=1, n_warmup_steps=0),
)
trials = optuna.load_study(study_name="search", storage=STORAGE).trials
states = [t.state.name for t in trials]
print(
    "BEST_RUN "
    + json.dumps(
        {
            "type": f"{type(best).__module__}.{type(best).__qualname__}",
            "fields": list(best._fields),
            "run_id": best.run_id,
            "objective": best.objective,
            "hyperparameters": best.hyperparameters,
            "states": states,
        }
    )
)
