"""Shared fixtures: real services (PostgreSQL, a local Ray), started once where they are costly."""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest
from helpers.waiting import wait_until

# Plain `assert`s in the shared helpers report their values like the tests' own do.
pytest.register_assert_rewrite("helpers")

PG_ADMIN_URL = os.environ.get(
    "HPO_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    # pre-ping: a test may restart the server, which drops the pooled connection.
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as error:  # pragma: no cover - CI starts postgres
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def hpo_cli():
    """`hpo` commands for every test: each forks from one interpreter that imported torch and
    transformers once (helpers/cli_runner.py), instead of a new one that imports them again."""
    from helpers.cli_runner import CliRunner

    runner = CliRunner()
    yield runner
    runner.close()


@pytest.fixture
def run_hpo(hpo_cli):
    """`run_hpo(*args, cwd=...)`: `hpo <args>` run in `cwd` by the shared runner; the result
    has `returncode`, `stdout` and `stderr`, like a CompletedProcess."""

    def run(*args: str, cwd, **options):
        return hpo_cli.run(list(args), cwd, **options)

    return run


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole test session (it takes ~10 s to start)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # address="local": never join a cluster that a `ray start` elsewhere left behind.
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


# A real `ray start --head` (its own port, never Redis's 6379), for the tests of the cluster
# path. Its processes inherit PROBE_ENV, which tests/helpers/gpu_probe.py reads inside trials.
RAY_HEAD_PORT = int(os.environ.get("HPO_TEST_RAY_PORT", "6391"))
RAY_HEAD_DASHBOARD_PORT = int(os.environ.get("HPO_TEST_RAY_DASHBOARD_PORT", "8271"))
RAY_HEAD_GPUS = 2  # declared, not real: Ray schedules (and sets CUDA_VISIBLE_DEVICES) by them


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """`ray start --head --block` on 127.0.0.1 with 2 CPUs and 2 declared GPUs; yields
    {"address", "probe_dir", "env"} (`env`: what a client process needs to join it). Stopped by
    killing its own process group (never `ray stop`, which stops every Ray on the machine)."""
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray")
    repo = Path(__file__).resolve().parents[1]
    probe_dir = tmp_path_factory.mktemp("gpu-probe")
    temp_dir = tmp_path_factory.mktemp("ray")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "tests")]),
        "HPO_TEST_PROBE_DIR": str(probe_dir),
        # No token: the machine's shared ~/.ray/auth_token belongs to other clusters.
        "RAY_AUTH_MODE": "disabled",
    }
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            "--block",
            f"--port={RAY_HEAD_PORT}",
            f"--dashboard-port={RAY_HEAD_DASHBOARD_PORT}",
            "--include-dashboard=false",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            f"--num-gpus={RAY_HEAD_GPUS}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def port_open() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", RAY_HEAD_PORT)) == 0

    # The GCS opens its port before the raylet has registered the node: then wait until the
    # cluster reports the node's declared GPUs (what the tests schedule by), as any client
    # would see them.
    status = {"text": ""}

    def node_registered() -> bool:
        probe = subprocess.run(
            [ray_cli, "status", f"--address=127.0.0.1:{RAY_HEAD_PORT}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        status["text"] = probe.stdout + probe.stderr
        return probe.returncode == 0 and f"/{RAY_HEAD_GPUS}.0 GPU" in status["text"]

    for condition, what in ((port_open, "its port"), (node_registered, "its node's GPUs")):
        try:
            wait_until(
                condition, what=f"ray start --head: {what}", timeout=180, interval=0.5, run=head
            )
        except AssertionError as error:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)  # whatever of its group is left
            pytest.fail(f"{error} (exit code {head.returncode}){status['text']}")
    yield {
        "address": f"127.0.0.1:{RAY_HEAD_PORT}",
        "probe_dir": probe_dir,
        "env": {"RAY_AUTH_MODE": "disabled"},
    }
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)  # whatever of its group is left
    except ProcessLookupError:
        pass
