"""`ray.resources_per_trial: {gpu: 0.5}` through `hpo run` on a real `ray start --head` cluster
that declares 2 GPUs: Ray packs two trials on each GPU and tells each trial its GPU through
CUDA_VISIBLE_DEVICES (this machine has no GPU; Ray schedules by the declared ones all the same).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.study_files import write_study_file

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.slow
def test_half_a_gpu_per_trial_packs_two_trials_on_each_gpu(tmp_path, ray_head):
    path = write_study_file(tmp_path, budget={"n_trials": 4})
    study = yaml.safe_load(path.read_text())
    study.update(
        backend="ray",
        workers="auto",
        model={"factory": "helpers.gpu_probe:gpt2_recording_gpu", "task": "causal-lm"},
        ray={
            "address": ray_head["address"],
            "resources_per_trial": {"cpu": 0.5, "gpu": 0.5},
            "storage_path": str(tmp_path / "ray"),
        },
    )
    study.pop("pruner")
    path.write_text(yaml.safe_dump(study))
    env = {
        **os.environ,
        **ray_head["env"],
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
    }
    env.pop("HPO_STORAGE", None)
    run = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "2 trial(s) per GPU (gpu: 0.5 each)" in run.stdout
    records = [json.loads(p.read_text()) for p in Path(ray_head["probe_dir"]).glob("*.json")]
    # Four trials met at the probe's barrier at once: two on GPU 0, two on GPU 1.
    assert sorted(r["cuda_visible_devices"] for r in records) == ["0", "0", "1", "1"], records
    assert len({r["pid"] for r in records}) == 4
