"""`push_best_to_hub`: at the end of `hpo run`, the best trial's model and its params go to a
Hub repo through huggingface_hub (HF_ENDPOINT and the token from its usual places).

The model is rebuilt from the study's model section with the best `model.*` params, loaded
with the best trial's best checkpoint and written with `save_pretrained`, so the repo loads
with `AutoModel….from_pretrained(repo)`. `hpo_best.json` beside it is what `hpo export` writes
(the study, the trial, its value and the training arguments), so `hpo train` can rerun it.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from hpo.errors import HpoError
from hpo.report.export import best_trial, export_config, write_config
from hpo.spec import StudySpec

PARAMS_FILE = "hpo_best.json"


def push_best(spec: StudySpec) -> str:
    """Uploads the best trial to `spec.push_best_to_hub`; returns the line to print."""
    best = best_trial(spec)
    checkpoint = best.get("checkpoint")
    if not checkpoint or not os.path.isdir(checkpoint):
        raise HpoError(
            f"push_best_to_hub: the best trial ({best.get('number')}) has no checkpoint on disk "
            f"({checkpoint or 'none recorded'}); let trials save (training.save_strategy) and "
            "keep the best one (keep: best)"
        )
    with tempfile.TemporaryDirectory(prefix="hpo-push-") as folder:
        _write_model(spec, best, checkpoint, folder)
        write_config(export_config(spec, best), os.path.join(folder, PARAMS_FILE))
        value = best.get("value", best.get("values"))
        message = (
            f"hpo: best trial {best.get('number')} of study {spec.name} "
            f"({', '.join(spec.objective.metrics)} = {value})"
        )
        repo_id, oid = _upload(spec.push_best_to_hub or "", folder, message)
    return f"pushed the best trial ({best.get('number')}) to {repo_id}, commit {oid[:12]}"


def _write_model(spec: StudySpec, best: dict[str, Any], checkpoint: str, folder: str) -> None:
    from hpo.data import study_model_init
    from trainer.checkpoint import load_weights

    model = study_model_init(spec)(best.get("params") or {})
    load_weights(checkpoint, model)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(folder)
    else:  # a factory's plain nn.Module: its weights as the checkpoint holds them
        from safetensors.torch import save_model

        save_model(model, os.path.join(folder, "model.safetensors"))


def _upload(repo: str, folder: str, message: str) -> tuple[str, str]:
    from trainer.hub import hub_api, scrub

    api = hub_api(None)  # the token from where huggingface_hub looks: HF_TOKEN, `hf auth login`
    try:
        repo_id = api.create_repo(repo, exist_ok=True).repo_id
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=message)
    except Exception as error:  # the Hub's HTTP and connection errors, one line each
        text = scrub(f"{type(error).__name__}: {error}".splitlines()[0], os.environ.get("HF_TOKEN"))
        raise HpoError(
            f"push_best_to_hub: uploading to {repo} failed: {text}; the study itself is "
            "complete: rerun `hpo run` when the Hub is reachable (its budget is met, so it only "
            "pushes)"
        ) from None
    return repo_id, info.oid
