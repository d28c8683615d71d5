"""What do faults cost a running study? The same small study, undisturbed and then hurt.

Each scenario runs `hpo run` of bench/studies/chaos.yaml (2 workers, trials of 60 steps with a
checkpoint every 10) as a fresh CLI process on a fresh storage, waits until a trial has written
a checkpoint, injects one fault, and lets the run finish:

- worker:       SIGKILL of one worker process;
- orchestrator: SIGKILL of `hpo run` itself, then `hpo run` again (both runs timed);
- forkserver:   SIGKILL of the fork server the workers are forked from;
- pg-restart:   `pg_ctlcluster 15 main restart` (PostgreSQL storage);
- pg-drop:      every connection to the study's database dropped 3 times (pg_terminate_backend).

It prints, per scenario: whether the run survived (the budget met, exit 0), trials lost (a
trial whose chain of retries never finished; should be 0), optimizer steps wasted (trained
twice, or thrown away), wall time against the undisturbed run on the same storage, and the
load average before and after, because on a shared machine that moves every figure.

Steps wasted per interrupted attempt = the last step it reported - the step its retry resumed
from (all of it when the retry restarted from step 0). An attempt may also have trained up to
eval_steps - 1 steps past its last report that nobody saw: the figure is a lower bound, and the
table says by how much it can be off.

Run:  python bench/chaos.py                          (every fault; PostgreSQL needed for pg-*)
      python bench/chaos.py --faults worker,forkserver --storage sqlite   (no PostgreSQL)

PostgreSQL is at 127.0.0.1:5432 (HPO_BENCH_PG); scratch databases are dropped after, and the
server is always left running. It prints a table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, machine_line, read_study, table, write_study

STUDY = "chaos"
PG_ADMIN_URL = os.environ.get(
    "HPO_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
PG_CLUSTER = ("15", "main")
FAULTS = ("worker", "orchestrator", "forkserver", "pg-restart", "pg-drop")
RUN_TIMEOUT_S = 1800.0


# ---------------------------------------------------------------------------------------------
# Storages and the PostgreSQL server


@contextlib.contextmanager
def scratch_storage(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh storage URL: a new SQLite file, or a new PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'chaos.db'}"
        return
    import sqlalchemy

    postgres_running()  # a previous scenario (or someone else) may have just restarted it
    name = f"hpo_chaos_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        postgres_running()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def postgres_running(timeout: float = 120.0) -> None:
    """Start the server if it is down, and wait until it accepts connections."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            return
        subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "start"], capture_output=True)
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back")


def restart_postgres() -> None:
    try:
        subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "restart"], check=True, timeout=120)
    finally:
        postgres_running()


def drop_connections(url: str) -> None:
    import sqlalchemy

    database = sqlalchemy.engine.make_url(url).database
    admin = sqlalchemy.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as connection:
            connection.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            )
    finally:
        admin.dispose()


# ---------------------------------------------------------------------------------------------
# Processes


def start_hpo_run(study_file: Path) -> subprocess.Popen:
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("HPO_STORAGE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(study_file)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def pid_alive(pid: int) -> bool:
    from hpo.backends.optuna.requeue import pid_alive as alive

    return alive(pid)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def trials_of(url: str) -> list[Any]:
    import optuna

    try:
        return optuna.load_study(study_name=STUDY, storage=url).get_trials()
    except Exception:  # not created yet
        return []


def wait_for_checkpoint(url: str, timeout: float = 600.0) -> Any:
    """A RUNNING trial that has written a checkpoint (so a fault lands mid-training)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for trial in trials_of(url):
            if trial.state.name == "RUNNING" and trial.user_attrs.get("last_checkpoint"):
                return trial
        time.sleep(0.2)
    raise RuntimeError("no trial wrote a checkpoint in time")


def worker_pid(trial: Any) -> int:
    return int(trial.user_attrs["worker"].rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------------
# Faults: each hurts the running `hpo run`; returns the processes it had to start itself.


def kill_worker(run: subprocess.Popen, url: str, study_file: Path) -> list[subprocess.Popen]:
    os.kill(worker_pid(wait_for_checkpoint(url)), signal.SIGKILL)
    return []


def kill_orchestrator(run: subprocess.Popen, url: str, study_file: Path) -> list[subprocess.Popen]:
    trial = wait_for_checkpoint(url)
    workers = [worker_pid(t) for t in trials_of(url) if t.state.name == "RUNNING"] or [
        worker_pid(trial)
    ]
    run.kill()
    run.wait()
    end = time.monotonic() + 300
    while any(pid_alive(pid) for pid in workers) and time.monotonic() < end:
        time.sleep(0.2)
    orphans = [pid for pid in workers if pid_alive(pid)]
    if orphans:
        print(f"  orphaned workers still alive after 300 s: {orphans}", file=sys.stderr)
    return [start_hpo_run(study_file)]


def kill_fork_server(run: subprocess.Popen, url: str, study_file: Path) -> list[subprocess.Popen]:
    os.kill(parent_of(worker_pid(wait_for_checkpoint(url))), signal.SIGKILL)
    return []


def pg_restart(run: subprocess.Popen, url: str, study_file: Path) -> list[subprocess.Popen]:
    wait_for_checkpoint(url)
    restart_postgres()
    return []


def pg_drop(run: subprocess.Popen, url: str, study_file: Path) -> list[subprocess.Popen]:
    wait_for_checkpoint(url)
    for _ in range(3):
        drop_connections(url)
        time.sleep(1.0)
    return []


FAULT_ACTIONS: dict[str, Callable[..., list[subprocess.Popen]]] = {
    "worker": kill_worker,
    "orchestrator": kill_orchestrator,
    "forkserver": kill_fork_server,
    "pg-restart": pg_restart,
    "pg-drop": pg_drop,
}


# ---------------------------------------------------------------------------------------------
# One scenario and what it cost


@dataclass(frozen=True)
class Outcome:
    fault: str
    storage: str
    exit_codes: list[int]
    survived: bool
    finished: int
    lost: int
    wasted_steps: int
    interrupted_attempts: int
    wall_s: float
    load_before: float
    load_after: float


def run_scenario(fault: str, storage_kind: str, doc: dict[str, Any]) -> Outcome:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hpo-chaos-") as tmp:
        workdir = Path(tmp)
        with scratch_storage(storage_kind, workdir) as url:
            study_file = write_study(doc, workdir, storage=url)
            started = time.perf_counter()
            runs = [start_hpo_run(study_file)]
            if fault != "none":
                runs += FAULT_ACTIONS[fault](runs[0], url, study_file)
            codes = []
            for run in runs:
                out, _ = run.communicate(timeout=RUN_TIMEOUT_S)
                codes.append(run.returncode)
                if run.returncode not in (0, -signal.SIGKILL):
                    print(out[-3000:], file=sys.stderr)
            wall_s = time.perf_counter() - started
            trials = trials_of(url)
    n_trials = doc["budget"]["n_trials"]
    finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    lost, wasted, attempts = account(trials)
    return Outcome(
        fault=fault,
        storage=storage_kind,
        exit_codes=codes,
        survived=codes[-1] == 0 and finished == n_trials,
        finished=finished,
        lost=lost,
        wasted_steps=wasted,
        interrupted_attempts=attempts,
        wall_s=wall_s,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def account(trials: list[Any]) -> tuple[int, int, int]:
    """(trials lost, steps wasted (lower bound), interrupted attempts) of a study's trials.

    A retry names the trial it resumes (`failed_trial`); a chain of attempts is lost when its
    last attempt did not finish. Each interrupted attempt wastes what it trained past the step
    its retry resumed from.
    """
    by_number = {t.number: t for t in trials}
    retry_of = {
        t.system_attrs["failed_trial"]: t for t in trials if "failed_trial" in t.system_attrs
    }
    lost = wasted = attempts = 0
    for trial in trials:
        if "failed_trial" in trial.system_attrs and trial.system_attrs["failed_trial"] in by_number:
            continue  # counted from the start of its chain
        attempt = trial
        while attempt.number in retry_of:
            retry = retry_of[attempt.number]
            attempts += 1
            reached = max(attempt.intermediate_values, default=0)
            resumed = int(retry.user_attrs.get("first_step", 1)) - 1
            wasted += max(0, reached - resumed)
            attempt = retry
        if attempt.state.name not in ("COMPLETE", "PRUNED"):
            lost += 1
    return lost, wasted, attempts


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help="comma-separated, of: " + ", ".join(FAULTS)
    )
    parser.add_argument(
        "--storage",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="storage of the process faults (the pg-* ones always use PostgreSQL)",
    )
    parser.add_argument("--n-trials", type=int, default=None, help="override the study's budget")
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}")
    doc = read_study(STUDY)
    if args.n_trials:
        doc["budget"]["n_trials"] = args.n_trials
    storage_of = {f: ("postgresql" if f.startswith("pg-") else args.storage) for f in faults}
    print(machine_line())
    print(
        f"study: {doc['budget']['n_trials']} trials x {doc['training']['max_steps']} steps, "
        f"workers {doc['workers']}, eval/checkpoint every {doc['training']['eval_steps']} steps"
    )
    baselines = {}
    outcomes = []
    for kind in sorted(set(storage_of.values())):
        print(f"undisturbed run on {kind} ...", flush=True)
        baselines[kind] = run_scenario("none", kind, doc)
        outcomes.append(baselines[kind])
    for fault in faults:
        print(f"{fault} on {storage_of[fault]} ...", flush=True)
        outcomes.append(run_scenario(fault, storage_of[fault], doc))
    slack = doc["training"]["eval_steps"] - 1
    rows = [
        [
            o.fault,
            o.storage,
            "/".join(str(c) for c in o.exit_codes),
            "yes" if o.survived else "NO",
            o.finished,
            o.lost,
            f"{o.wasted_steps} (+<= {o.interrupted_attempts * slack})",
            o.wall_s,
            o.wall_s - baselines[o.storage].wall_s,
            f"{o.load_before:.1f} -> {o.load_after:.1f}",
        ]
        for o in outcomes
    ]
    headers = [
        "fault",
        "storage",
        "exit",
        "survived",
        "finished",
        "trials lost",
        "steps wasted",
        "wall s",
        "time lost s",
        "load 1-min before -> after",
    ]
    print(table(headers, rows))
    survived = sum(o.survived for o in outcomes if o.fault != "none")
    print(
        f"faults survived: {survived}/{len(faults)}; trials lost: {sum(o.lost for o in outcomes)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
