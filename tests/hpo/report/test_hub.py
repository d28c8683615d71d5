"""push_best_to_hub: `hpo run` of a real study ends by uploading the best trial's model and
params to a local Hub over HTTP (tests/helpers/local_hub.py), with the real huggingface_hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.local_hub import LocalHub
from helpers.study_files import write_study_file

from hpo.storage import reader

pytestmark = pytest.mark.slow

TOKEN = "hf_study_secret_42"
REPO = "me/tiny-best"


def hpo_run(study_file: Path, hub: LocalHub) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": TOKEN,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(study_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_hpo_run_pushes_the_best_model_and_retries_after_a_hub_outage(tmp_path):
    study_file = write_study_file(
        tmp_path, push_best_to_hub=REPO, budget={"n_trials": 2}, keep="best"
    )
    url = f"sqlite:///{tmp_path}/tiny.db"
    with LocalHub() as hub:
        # 1. The Hub is down: the study completes, the push fails with one line, exit 1.
        hub.fail_always(503)
        failed = hpo_run(study_file, hub)
        assert failed.returncode == 1, failed.stderr[-3000:]
        assert reader.status(url, "tiny")["counts"]["COMPLETE"] == 2
        error = failed.stderr.strip().splitlines()[-1]
        assert error.startswith(f"error: push_best_to_hub: uploading to {REPO} failed")
        assert "Traceback" not in failed.stderr
        assert TOKEN not in failed.stdout + failed.stderr
        # 2. It is back: a rerun has no trial left to run, and pushes.
        hub.fail_next(0)
        pushed = hpo_run(study_file, hub)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        assert reader.status(url, "tiny")["counts"]["COMPLETE"] == 2
        best = reader.best(url, "tiny")
        assert f"pushed the best trial ({best['number']}) to {REPO}" in pushed.stdout
        assert TOKEN not in pushed.stdout + pushed.stderr
        # every call to the repo API carried the token
        repo_calls = [r for r in hub.requests if r.path.startswith(("/api/repos/", "/api/models/"))]
        assert {r.path.split("/")[-2] for r in repo_calls} >= {"repos", "preupload", "commit"}
        assert all(r.authorization == f"Bearer {TOKEN}" for r in repo_calls)
        (commit,) = hub.commits(REPO)
    assert {"config.json", "model.safetensors", "hpo_best.json"} <= set(commit.files)
    params = json.loads(commit.files["hpo_best.json"])
    assert params["study"]["trial"] == best["number"]
    assert params["training"]["learning_rate"] == best["params"]["learning_rate"]
    # The repo loads with from_pretrained, with the best trial's size and weights.
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "downloaded"
    folder.mkdir()
    for name, content in commit.files.items():
        (folder / name).write_bytes(content)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.n_layer == best["params"]["model.n_layer"]
    trained = load_file(os.path.join(best["checkpoint"], "model.safetensors"))
    pushed_weights = model.state_dict()
    for key, tensor in trained.items():
        assert (pushed_weights[key] == tensor).all(), key
