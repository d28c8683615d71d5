"""`hpo status` / `hpo best` on a 10,000-trial study, against optuna's own ways of asking.

With `--postgres` the study is 100,000 trials in a fresh database on the PostgreSQL server
(default postgresql://postgres@127.0.0.1:5432/postgres, created and dropped here); the target
is `hpo status` and `hpo best` under 1 s each, printed beside the figures (never asserted).

Builds a study of N trials (default 10,000) with 20 intermediate values each, three params
and three user attrs per trial, then times each command as a whole process, the way a user
runs it (interpreter start included):

    hpo status / hpo best            (python -m hpo.cli ... study.yaml)
    optuna best-trial                (optuna's CLI)
    optuna.load_study(...).trials    (a Python script)
    optuna.load_study(...).best_trial

Rerun:  python bench/status_at_scale.py [--trials 10000] [--storage URL] [--repeat 3]
        python bench/status_at_scale.py --postgres [--trials 100000] [--hpo-only]

The study is built in bulk: optuna creates the tables and one real trial (so every row
format is optuna's own), then the other trials are copied from it with executemany inserts
into optuna's tables as the database describes them (reflected, so no private optuna module is
needed). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from bench._common import load_line, median_range, table  # noqa: E402
from hpo.storage.rdb import open_storage  # noqa: E402
from hpo.storage.urls import mask_url, with_driver  # noqa: E402

STUDY = "status_at_scale"
STEPS = 20
BATCH_SIZES = [8, 16, 32]
RUNNING = 4  # trials still running at the end, as with 4 workers
# Optuna's tables the bulk copy reads or fills, in the order build_study unpacks them.
TABLES = (
    "studies",
    "trials",
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_user_attributes",
)


def build_study(url: str, n_trials: int, seed: int = 0) -> float:
    """Create the study; returns the seconds it took."""
    import optuna
    import sqlalchemy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    storage = open_storage(url)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="minimize")

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        trial.suggest_categorical("per_device_train_batch_size", BATCH_SIZES)
        trial.suggest_int("model.n_layer", 1, 4)
        for step in range(STEPS):
            trial.report(4.0 - step * 0.1, (step + 1) * 50)
        trial.set_user_attr("output_dir", "runs/status_at_scale/trial-0")
        trial.set_user_attr("best_checkpoint", "runs/status_at_scale/trial-0/checkpoint-1000")
        trial.set_user_attr("metrics", {"train_loss": 2.5, "train_runtime": 12.0})
        return 2.5

    study.optimize(objective, n_trials=1)

    rng = random.Random(seed)
    engine = storage.engine
    # Optuna's enum columns hold the member names ('COMPLETE', 'FINITE'), so plain strings go in.
    schema = sqlalchemy.MetaData()
    schema.reflect(engine, only=list(TABLES))
    studies, trials_table, params_table, values_table, steps_table, attrs_table = (
        schema.tables[name] for name in TABLES
    )
    with engine.begin() as conn:
        study_id = conn.execute(
            sqlalchemy.select(studies.c.study_id).where(studies.c.study_name == STUDY)
        ).scalar_one()
        distributions = dict(
            conn.execute(
                sqlalchemy.select(params_table.c.param_name, params_table.c.distribution_json)
            ).all()
        )
        first_id = (
            conn.execute(
                sqlalchemy.select(sqlalchemy.func.max(trials_table.c.trial_id))
            ).scalar_one()
            + 1
        )

        trials, params, values, steps, attrs = [], [], [], [], []
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        for offset in range(n_trials - 1):
            trial_id, number = first_id + offset, 1 + offset
            state = _state(number, n_trials, rng)
            started = now - dt.timedelta(seconds=(n_trials - number) * 30)
            finished = state not in ("RUNNING", "WAITING")
            trials.append(
                {
                    "trial_id": trial_id,
                    "number": number,
                    "study_id": study_id,
                    "state": state,
                    "datetime_start": started,
                    "datetime_complete": started + dt.timedelta(seconds=25) if finished else None,
                }
            )
            lr = math.exp(rng.uniform(math.log(1e-5), math.log(1e-2)))
            for name, internal in (
                ("learning_rate", lr),
                ("per_device_train_batch_size", float(rng.randrange(len(BATCH_SIZES)))),
                ("model.n_layer", float(rng.randint(1, 4))),
            ):
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": internal,
                        "distribution_json": distributions[name],
                    }
                )
            final = 1.5 + rng.random() * 2.5
            n_steps = STEPS if state != "RUNNING" else STEPS // 2
            for step in range(n_steps):
                steps.append(
                    {
                        "trial_id": trial_id,
                        "step": (step + 1) * 50,
                        "intermediate_value": final + (STEPS - step) * 0.05,
                        "intermediate_value_type": "FINITE",
                    }
                )
            if state == "COMPLETE":
                values.append(
                    {
                        "trial_id": trial_id,
                        "objective": 0,
                        "value": final,
                        "value_type": "FINITE",
                    }
                )
            output_dir = f"runs/{STUDY}/trial-{number}"
            for key, value in (
                ("output_dir", output_dir),
                ("best_checkpoint", f"{output_dir}/checkpoint-1000"),
                ("metrics", {"train_loss": final, "train_runtime": 12.0}),
            ):
                attrs.append({"trial_id": trial_id, "key": key, "value_json": _json(value)})
        conn.execute(sqlalchemy.insert(trials_table), trials)
        conn.execute(sqlalchemy.insert(params_table), params)
        conn.execute(sqlalchemy.insert(values_table), values)
        conn.execute(sqlalchemy.insert(steps_table), steps)
        conn.execute(sqlalchemy.insert(attrs_table), attrs)
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the sequence behind; a later optuna insert must not collide.
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'),"
                " (SELECT MAX(trial_id) FROM trials))"
            )
    engine.dispose()
    return time.perf_counter() - start


def _state(number: int, n_trials: int, rng: random.Random) -> str:
    if number >= n_trials - RUNNING:
        return "RUNNING"
    roll = rng.random()
    return "COMPLETE" if roll < 0.80 else "PRUNED" if roll < 0.96 else "FAIL"


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def timed(command: list[str], repeat: int) -> tuple[float, float, str]:
    """Median wall and CPU seconds of `command` as a fresh process; a slow one runs once.

    CPU time (user + sys of the child) is reported beside wall time because it barely moves
    when other work shares the machine, while wall time does.
    """
    import resource

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    walls, cpus, output = [], [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(command)}\n{output[-3000:]}")
        if walls[-1] > 5:
            break
    return statistics.median(walls), statistics.median(cpus), output


# What `hpo status` and `hpo best` should stay under, whole process, at 100,000 trials.
TARGET_S = 1.0
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_postgres_database(admin_url: str) -> tuple[str, object]:
    """A new empty database on the server of `admin_url`: (its URL, a function dropping it)."""
    import uuid

    import sqlalchemy

    name = f"hpo_status_bench_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(with_driver(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return f"{admin_url.rsplit('/', 1)[0]}/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="default 10,000 (100,000 with --postgres)")
    parser.add_argument("--storage", help="an empty database URL (default: a temporary SQLite)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_ADMIN,
        metavar="ADMIN_URL",
        help=f"a fresh database on this PostgreSQL server (default {POSTGRES_ADMIN})",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds: runs per command (median)"
    )
    parser.add_argument(
        "--hpo-only", action="store_true", help="skip optuna's ways (minutes at 100,000 trials)"
    )
    args = parser.parse_args()
    if args.trials is None:
        args.trials = 100_000 if args.postgres else 10_000

    workdir = Path(tempfile.mkdtemp(prefix="hpo-status-bench-"))
    drop_database = None
    if args.postgres:
        url, drop_database = fresh_postgres_database(args.postgres)
    else:
        url = args.storage or f"sqlite:///{workdir / 'study.db'}"
    try:
        build_s = build_study(url, args.trials)
        print(
            f"built {args.trials} trials x {STEPS} intermediate values in {build_s:.1f} s"
            f" on {mask_url(url)}"
        )
        study_file = workdir / "study.yaml"
        study_file.write_text(f"name: {STUDY}\nstorage: {url}\n", encoding="utf-8")
        optuna_cli = shutil.which("optuna", path=str(Path(sys.executable).parent)) or "optuna"
        # A fresh interpreter's floor, to read the others against.
        python = [sys.executable, "-c", "pass"]
        hpo = [sys.executable, "-m", "hpo.cli"]
        load = (
            "import optuna; optuna.logging.set_verbosity(optuna.logging.WARNING); "
            f"s = optuna.load_study(study_name={STUDY!r}, storage={with_driver(url)!r}); "
        )
        commands = [
            ("hpo status", [*hpo, "status", str(study_file)]),
            ("hpo best", [*hpo, "best", str(study_file)]),
            ("hpo status --json", [*hpo, "status", str(study_file), "--json"]),
            (
                "optuna best-trial",
                [optuna_cli, "best-trial", "--study-name", STUDY, "--storage", with_driver(url)],
            ),
            ("optuna.load_study().trials", [sys.executable, "-c", load + "print(len(s.trials))"]),
            (
                "optuna.load_study().best_trial",
                [sys.executable, "-c", load + "print(s.best_trial.number)"],
            ),
            ("python -c pass (floor)", python),
        ]
        if args.hpo_only:
            commands = [c for c in commands if not c[0].startswith("optuna")]
        print(f"before: {load_line()}", flush=True)
        walls: dict[str, list[float]] = {label: [] for label, _ in commands}
        cpus: dict[str, list[float]] = {label: [] for label, _ in commands}
        for round_ in range(args.repeat):  # interleaved: every command once per round
            for label, command in commands:
                wall, cpu, output = timed(command, 1)
                walls[label].append(wall)
                cpus[label].append(cpu)
                if label == "hpo status" and round_ == 0:
                    print(output)
        reference = statistics.median(walls["hpo status"])
        rows = [
            (
                label,
                median_range(walls[label]),
                statistics.median(cpus[label]),
                statistics.median(walls[label]) / reference,
            )
            for label, _ in commands
        ]
        print(
            f"\n{args.trials} trials x {STEPS} steps, {mask_url(url).split(':')[0]}, "
            f"{os.cpu_count()} cores, {dt.date.today().isoformat()} "
            f"({args.repeat} interleaved rounds)"
        )
        print(
            table(
                ["command (whole process)", "wall s: median (range)", "cpu s", "wall x hpo status"],
                rows,
            )
        )
        print(f"after: {load_line()}")
        for label in ("hpo status", "hpo best"):
            wall = statistics.median(walls[label])
            verdict = "under" if wall < TARGET_S else "OVER"
            print(f"target: {label} {wall:.2f} s, {verdict} the {TARGET_S:.0f} s target")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if drop_database is not None:
            drop_database()


if __name__ == "__main__":
    main()
