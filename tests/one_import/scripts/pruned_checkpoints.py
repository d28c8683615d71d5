"""A Transformers user's search that saves checkpoints while a pruner stops trials early.

Runs unchanged through transformers.Trainer and through ours; only the import line differs.
Prints, as JSON, each trial's state, reported steps and the checkpoint folders it left.
"""

import json
import os
import sys

import common
import optuna
from transformers import Trainer, TrainingArguments  # the one import
from transformers.models.gpt2 import GPT2Config, GPT2LMHeadModel

OUTPUT_DIR = sys.argv[1]
os.makedirs(OUTPUT_DIR, exist_ok=True)
STORAGE = f"sqlite:///{os.path.abspath(OUTPUT_DIR)}/search.db"


class PruneTheSecondTrial(optuna.pruners.BasePruner):
    """Trial 1 is pruned at its first report after step 3; trial 0 runs to the end."""

    def prune(self, study, trial):
        return trial.number == 1 and trial.last_step is not None and trial.last_step > 3


def model_init(trial):
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    return GPT2LMHeadModel(config)


args = TrainingArguments(
    output_dir=OUTPUT_DIR,
    max_steps=8,
    eval_strategy="steps",
    eval_steps=2,
    save_strategy="steps",
    save_steps=2,
    logging_steps=2,
    report_to="none",
    disable_tqdm=True,
    use_cpu=True,
)
trainer = Trainer(
    model_init=model_init,
    args=args,
    train_dataset=common.lm_rows(48, seed=0),
    eval_dataset=common.lm_rows(16, seed=1),
)
optuna.logging.set_verbosity(optuna.logging.WARNING)
trainer.hyperparameter_search(
    hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2)},
    n_trials=2,
    direction="minimize",
    backend="optuna",
    storage=STORAGE,
    study_name="search",
    sampler=optuna.samplers.TPESampler(seed=0),
    pruner=PruneTheSecondTrial(),
)
trials = optuna.load_study(study_name="search", storage=STORAGE).trials
print(
    "TRIALS "
    + json.dumps(
        [
            {
                "state": t.state.name,
                "steps": sorted(t.intermediate_values),
                "checkpoints": sorted(
                    name
                    for name in os.listdir(os.path.join(OUTPUT_DIR, f"run-{t.number}"))
                    if name.startswith("checkpoint-")
                )
                if os.path.isdir(os.path.join(OUTPUT_DIR, f"run-{t.number}"))
                else None,
            }
            for t in trials
        ]
    )
)
