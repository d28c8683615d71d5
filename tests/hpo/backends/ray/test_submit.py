"""`hpo submit` against a real `ray start --head` (dashboard + Jobs API, token auth on) on
127.0.0.1, with the study's storage on the PostgreSQL server: the topology of
docker-compose.yml, run natively."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import requests
import yaml
from helpers.study_files import tiny_gpt2_config
from helpers.waiting import wait_until
from optuna.trial import TrialState

from hpo.backends.ray.submit import prepare_job
from hpo.errors import HpoError

REPO = Path(__file__).resolve().parents[4]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head with the dashboard, on free ports and its own temp dir (so that no other
    `ray.init()` on this machine finds and joins it), stopped by signalling its process group
    (`ray stop` would stop every Ray on the machine)."""
    pytest.importorskip("aiohttp", reason="the Jobs API needs ray[default]")
    token = secrets.token_hex(16)
    (gcs, dashboard, agent, agent_grpc, runtime_env, metrics, client, node_mgr, obj_mgr) = (
        free_ports(9)
    )
    temp_dir = tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp")  # short: socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HPO_"))}
    # As docker-compose.yml sets it: time for a stopped driver to record its trials.
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, RAY_JOB_STOP_WAIT_TIME_S="15")
    # The job's `python` must be this interpreter (the one with torch and this project's deps).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", "--num-cpus=2",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}", f"--metrics-export-port={metrics}",
        f"--ray-client-server-port={client}", f"--node-manager-port={node_mgr}",
        f"--object-manager-port={obj_mgr}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]  # fmt: skip
    log = open(Path(temp_dir) / "ray-start.log", "w")  # noqa: SIM115 - closed in teardown
    head = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 90
    while True:
        try:
            answer = requests.get(
                f"{url}/api/version", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
            if answer.ok:
                break
        except requests.ConnectionError:
            pass
        if head.poll() is not None or time.monotonic() > deadline:
            os.killpg(head.pid, signal.SIGKILL)
            pytest.fail(f"ray start --head did not come up:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, token
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    # Whatever of the head is left in its process group (the GCS, raylet, dashboard); the
    # workers exit with their raylet.
    try:
        os.killpg(head.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    head.wait()
    log.close()
    shutil.rmtree(temp_dir, ignore_errors=True)


def hpo_submit(*args: str, token: str | None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(REPO)
    env["HOME"] = str(cwd)  # no ~/.ray/auth_token from this machine's own Ray
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "hpo.backends.ray.submit", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def tiny_study(tmp_path: Path, storage: str) -> Path:
    study = {
        "name": "submitted",
        "storage": storage,
        "backend": "ray",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": 2},
        "sampler": {"name": "random", "seed": 1},
        # In optimizer steps (the study file's unit): the first and the second evaluation.
        "scheduler": {"name": "asha", "grace_period": 2, "max_t": 4, "reduction_factor": 2},
        "ray": {"max_concurrent_trials": 2, "resources_per_trial": {"cpu": 1}},
        "model": {
            "config": tiny_gpt2_config(n_positions=32, n_embd=16, n_layer=1),
            "task": "causal-lm",
        },
        "data": {"corpus": "pydoc-topics", "tokenizer": "bytes", "block_size": 32,
                 "max_eval_samples": 32},
        "training": {
            "output_dir": str(tmp_path / "runs"),
            "max_steps": 4,
            "per_device_train_batch_size": 8,
            "eval_strategy": "steps",
            "eval_steps": 2,
        },
        "space": {"learning_rate": {"type": "categorical", "choices": [3e-2, 1e-6]}},
    }  # fmt: skip
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_a_job_uploads_the_study_and_this_project_when_the_working_dir_lacks_it(tmp_path):
    study = tiny_study(tmp_path, "postgresql://postgres@127.0.0.1:5432/x")
    job = prepare_job(str(study), working_dir=str(tmp_path))
    assert job["entrypoint"] == "python -m hpo.cli run study.yaml"
    assert job["runtime_env"]["working_dir"] == str(tmp_path.resolve())
    assert sorted(Path(p).name for p in job["runtime_env"]["py_modules"]) == ["hpo", "trainer"]
    assert job["submission_id"].startswith("hpo-submitted-")

    with pytest.raises(HpoError, match="outside the working dir"):
        prepare_job(str(study), working_dir=str(REPO))


def test_without_an_address_or_with_a_bad_study_nothing_is_sent(tmp_path):
    study = tiny_study(tmp_path, "postgresql://postgres@127.0.0.1:5432/x")
    result = hpo_submit(str(study), token=None, cwd=tmp_path)
    assert result.returncode == 1 and "--address" in result.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text(study.read_text().replace("n_trials: 2", "n_trails: 2"))
    # Port 9 (discard) has no dashboard: the study error must come first, with exit 2.
    result = hpo_submit(str(broken), "--address", "http://127.0.0.1:9", token=None, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "n_trails" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_submit_follow_runs_the_study_on_the_cluster_into_postgres(ray_head, pg_url, tmp_path):
    url, token = ray_head
    study = tiny_study(tmp_path, pg_url)

    result = hpo_submit(str(study), "--address", url, "--follow", token=token, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert token not in output
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("hpo-submitted-")
    assert f"job {job_id}: SUCCEEDED" in result.stderr

    trials = optuna.load_study(study_name="submitted", storage=pg_url).get_trials()
    assert len(trials) == 2
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert trial.params["learning_rate"] in (3e-2, 1e-6)
        assert set(trial.intermediate_values) <= {2, 4}
    assert any(t.state == TrialState.COMPLETE for t in trials)

    status = hpo_submit("--status", job_id, "--address", url, token=token, cwd=tmp_path)
    assert status.returncode == 0 and f"{job_id} SUCCEEDED" in status.stdout
    stopped = hpo_submit("--stop", job_id, "--address", url, token=token, cwd=tmp_path)
    assert stopped.returncode == 0 and "already finished" in stopped.stdout


SLOW_MODEL = """
import time

from transformers import GPT2Config, GPT2LMHeadModel


class SlowGPT2(GPT2LMHeadModel):
    # Slow training steps keep a trial running long enough to be stopped in the middle.
    def forward(self, *args, **kwargs):
        if self.training:
            time.sleep(0.3)
        return super().forward(*args, **kwargs)


def build(**overrides):
    config = dict(vocab_size=256, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    return SlowGPT2(GPT2Config(**{**config, **overrides}))
"""


def stoppable_study(tmp_path: Path, storage: str) -> Path:
    """tiny_study with slow steps, a relative output_dir, and no early stopping."""
    (tmp_path / "slow_model.py").write_text(SLOW_MODEL)
    study = yaml.safe_load(tiny_study(tmp_path, storage).read_text())
    study["model"] = {"factory": "slow_model:build", "task": "causal-lm"}
    study["training"].update(output_dir="runs", max_steps=16, eval_steps=4)
    reports = 16 // 4
    study["scheduler"] = {
        "name": "asha",
        "time_attr": "training_iteration",
        "grace_period": reports,
        "max_t": reports,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_stopped_job_leaves_the_storage_truthful_and_resubmitting_restores_it(
    ray_head, pg_url, tmp_path
):
    from hpo.attrs import FAIL_REASON_ATTR, INTERRUPTED, OUTPUT_DIR_ATTR, RAY_TRIAL_ID_ATTR

    url, token = ray_head
    study = stoppable_study(tmp_path, pg_url)
    lasting = tmp_path / "runs"  # training.output_dir, as seen from the submitting side

    def trials():
        return optuna.load_study(study_name="submitted", storage=pg_url).get_trials()

    submitted = hpo_submit(str(study), "--address", url, token=token, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0].strip()

    def running_with_a_report():
        try:
            return [t for t in trials() if t.state == TrialState.RUNNING and t.intermediate_values]
        except KeyError:  # the study is not created yet
            return None

    wait_until(
        running_with_a_report,
        what="a running trial with a reported checkpoint",
        timeout=240,
        interval=0.5,
    )
    stop = hpo_submit("--stop", job_id, "--address", url, token=token, cwd=tmp_path)
    assert stop.returncode == 0 and "stop requested" in stop.stdout, stop.stderr

    # (a) the storage says what happened: nothing RUNNING, the stopped trials failed with a
    # reason, each queued (WAITING) with its params, Ray trial id and intermediate values.
    def settled():
        found = trials()
        return found if not [t for t in found if t.state == TrialState.RUNNING] else None

    after_stop = wait_until(
        settled, what="no trial left RUNNING after the stop", timeout=60, interval=0.5
    )
    stopped = [t for t in after_stop if t.state == TrialState.FAIL]
    assert stopped, [(t.number, t.state) for t in after_stop]
    for trial in stopped:
        assert trial.user_attrs[FAIL_REASON_ATTR] == INTERRUPTED
        (copy,) = [t for t in after_stop if t.system_attrs.get("failed_trial") == trial.number]
        assert copy.state == TrialState.WAITING
        assert copy.params == trial.params
        assert copy.user_attrs[RAY_TRIAL_ID_ATTR] == trial.user_attrs[RAY_TRIAL_ID_ATTR]
    # (b) the experiment lives under the study's lasting output_dir, not in the job's copy.
    experiment = lasting / "ray" / "submitted"
    assert experiment.is_dir()

    again = hpo_submit(str(study), "--address", url, "--follow", token=token, cwd=tmp_path)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-4000:]
    assert "restoring the interrupted experiment" in output
    final = trials()
    finished = [t for t in final if t.state == TrialState.COMPLETE]
    assert len(finished) == 2, [(t.number, t.state) for t in final]
    assert not [t for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # The restore continued the queued copies (the same Ray trials), not new ones.
    assert {t.number for t in finished} == {
        t.number for t in after_stop if t.state != TrialState.FAIL
    }
    for trial in finished:
        assert sorted(trial.intermediate_values) == [4, 8, 12, 16]
        # (c) what the storage names lasts: under output_dir on the submitting side.
        assert trial.user_attrs[OUTPUT_DIR_ATTR].startswith(str(lasting))
    best = optuna.load_study(study_name="submitted", storage=pg_url).best_trial
    assert Path(best.user_attrs["best_checkpoint"]).is_dir()
    assert best.user_attrs["best_checkpoint"].startswith(str(experiment))
    # (d) retention ran: no trainer checkpoint left in the trials' folders but what is named.
    named = {t.user_attrs.get("best_checkpoint") for t in final} - {None}
    left = {str(p) for p in lasting.glob("ray-*/**/checkpoint-*")}
    assert left <= named, left - named


def test_a_wrong_or_missing_token_is_refused_and_never_printed(ray_head, tmp_path):
    url, _ = ray_head
    wrong = secrets.token_hex(16)
    result = hpo_submit("--status", "hpo-x", "--address", url, token=wrong, cwd=tmp_path)
    assert result.returncode == 1
    assert "RAY_AUTH_TOKEN" in result.stderr and "refused" in result.stderr
    assert wrong not in result.stdout + result.stderr

    result = hpo_submit("--status", "hpo-x", "--address", url, token=None, cwd=tmp_path)
    assert result.returncode == 1
    assert "none was found" in result.stderr
