"""Python search spaces for studies (`space: helpers.spaces:<function>`), as a user writes them
for `hyperparameter_search(hp_space=...)`."""

from __future__ import annotations

from typing import Any


def optim_space(trial: Any) -> dict[str, Any]:
    """Define-by-run: adam_beta2 only for adamw_torch, and names that differ from the
    suggested ones (`lr` is returned as learning_rate)."""
    optim = trial.suggest_categorical("optim", ["adamw_torch", "sgd"])
    params = {
        "learning_rate": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "optim": optim,
        "model.n_layer": trial.suggest_int("model.n_layer", 1, 2),
    }
    if optim == "adamw_torch":
        params["adam_beta2"] = trial.suggest_categorical("beta2", [0.98, 0.999])
    return params


def scheduler_space(trial: Any) -> dict[str, Any]:
    """docs/STUDY_FILE.md's example: lr_scheduler_kwargs only for the scheduler that takes them."""
    scheduler = trial.suggest_categorical("lr_scheduler_type", ["linear", "cosine_with_restarts"])
    params = {
        "learning_rate": trial.suggest_float("lr", 1e-5, 1e-3, log=True),
        "lr_scheduler_type": scheduler,
    }
    if scheduler == "cosine_with_restarts":
        params["lr_scheduler_kwargs"] = {"num_cycles": trial.suggest_int("num_cycles", 1, 4)}
    return params
