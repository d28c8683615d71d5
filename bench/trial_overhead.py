"""What does a trial cost besides its training step, next to raw Optuna on the same storage?

For each storage (a SQLite file; a scratch PostgreSQL database at 127.0.0.1:5432, created for
the run and dropped after), it runs:

- raw Optuna: N x (ask, suggest the study's space, report one intermediate value,
  should_prune, tell) with the study's sampler, in one process. This is the floor any
  Optuna-based orchestrator pays per trial.
- hpo: `hpo run` of bench/studies/trial_overhead.yaml (one-step trials, workers 1) as a fresh
  CLI process, timed whole. Its per-trial overhead is (wall / N) minus the cost of the
  trial's own work, measured in this process in the same round: one training step and one
  evaluation of the same tiny model on the same batch sizes.

model_init is timed on its own (hpo.data.models.build_model_init, the function the workers
call), also in every round.
Target: hpo's per-trial overhead <= 1.3 x raw Optuna's per-trial cost + model_init.

Run:  python bench/trial_overhead.py                    (200 trials, SQLite and PostgreSQL)
      python bench/trial_overhead.py --n-trials 20      (a quick check)
      python bench/trial_overhead.py --storages sqlite  (no PostgreSQL server needed)

It prints a table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    finished_trials,
    load_line,
    machine_line,
    median_range,
    read_study,
    run_hpo,
    table,
    write_study,
)

STUDY = "trial_overhead"
PG_ADMIN_URL = os.environ.get(
    "HPO_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
TARGET_RATIO = 1.3


# ---------------------------------------------------------------------------------------------
# Storages


@contextlib.contextmanager
def scratch_storage(kind: str, workdir: Path, label: str) -> Iterator[str]:
    """A fresh, empty storage URL: a new SQLite file, or a new PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{label}.db'}"
        return
    import sqlalchemy

    name = f"hpo_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# ---------------------------------------------------------------------------------------------
# Raw Optuna: the floor


def suggest_space(trial: Any, space: dict[str, dict[str, Any]]) -> None:
    for name, dim in space.items():
        if dim["type"] == "float":
            trial.suggest_float(name, dim["low"], dim["high"], log=dim.get("log", False))
        elif dim["type"] == "int":
            trial.suggest_int(name, dim["low"], dim["high"], log=dim.get("log", False))
        else:
            trial.suggest_categorical(name, list(dim["choices"]))


def raw_optuna_per_trial(doc: dict[str, Any], storage: str, n_trials: int) -> float:
    """Seconds per trial of ask / suggest / report / should_prune / tell, nothing else."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = int(doc.get("sampler", {}).get("seed", 0))
    study = optuna.create_study(
        study_name="raw_optuna",
        storage=storage,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    start = time.perf_counter()
    for number in range(n_trials):
        trial = study.ask()
        suggest_space(trial, doc["space"])
        value = 1.0 / (1 + number)  # any value: the cost is the same
        trial.report(value, 1)
        trial.should_prune()
        study.tell(trial, value)
    return (time.perf_counter() - start) / n_trials


# ---------------------------------------------------------------------------------------------
# The trial's own work, measured in-process, so it can be taken out of hpo's wall time


def model_init_s(doc: dict[str, Any], repeats: int = 30) -> float:
    """Mean seconds of one model_init call, after the first (which resolves imports once)."""
    from hpo.data.models import build_model_init
    from hpo.spec import ModelSpec

    model = ModelSpec(task=doc["model"].get("task", "causal-lm"), config=doc["model"]["config"])
    model_init = build_model_init(model)
    model_init()
    start = time.perf_counter()
    for _ in range(repeats):
        model_init()
    return (time.perf_counter() - start) / repeats


def step_and_eval_s(doc: dict[str, Any], repeats: int = 20) -> float:
    """Seconds of one training step plus one evaluation pass: the work of a one-step trial.

    Plain torch on the same model, block size and batch sizes, with the torch threads a
    single worker gets; warm (the first calls are dropped).
    """
    import torch

    from hpo.data.models import build_model_init
    from hpo.spec import ModelSpec

    training, data = doc["training"], doc["data"]
    block = int(data["block_size"])
    train_bs = int(training.get("per_device_train_batch_size", 8))
    eval_bs = int(training.get("per_device_eval_batch_size", 8))
    n_eval = int(data.get("max_eval_samples") or eval_bs)
    model = build_model_init(
        ModelSpec(task=doc["model"].get("task", "causal-lm"), config=doc["model"]["config"])
    )()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = torch.randint(0, 256, (train_bs, block))
    held_out = torch.randint(0, 256, (n_eval, block))

    def one_trial_work() -> None:
        model.train()
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad():
            for rows in held_out.split(eval_bs):
                model(input_ids=rows, labels=rows)

    for _ in range(3):
        one_trial_work()
    start = time.perf_counter()
    for _ in range(repeats):
        one_trial_work()
    return (time.perf_counter() - start) / repeats


# ---------------------------------------------------------------------------------------------
# hpo


def hpo_per_trial(doc: dict[str, Any], storage: str, workdir: Path) -> dict[str, Any]:
    """`hpo run` to the budget as one CLI process, read back from its storage.

    The one-off start (process, imports, data cache, worker start) is split from the steady
    per-trial cost (first trial's start to last trial's end, per trial), so that a short
    --n-trials check still says what a trial costs.
    """
    import optuna

    folder = workdir / f"hpo_{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    path = write_study(doc, folder, storage=storage)
    result = run_hpo(["run", str(path)])
    if result.returncode != 0:
        raise SystemExit(f"bench: `hpo run` exited with {result.returncode}")
    finished = finished_trials(storage, doc["name"], result.started_at)
    states: dict[str, int] = {}
    for t in finished:
        states[t.state] = states.get(t.state, 0) + 1
    first_start = min(t.started_s for t in finished)
    last_end = max(t.elapsed_s for t in finished)
    # Each trial records its TrainOutput metrics; train_runtime is the trainer's loop
    # (steps, evaluations, checkpoints, reports), model_init excluded.
    attrs = [
        t.user_attrs.get("train_metrics")
        for t in optuna.load_study(study_name=doc["name"], storage=storage).get_trials(
            deepcopy=False
        )
    ]
    runtimes = [
        float(m["train_runtime"]) for m in attrs if isinstance(m, dict) and "train_runtime" in m
    ]
    return {
        "wall_s": result.wall_s,
        "startup_s": first_start,
        "per_trial_s": (last_end - first_start) / len(finished),
        "train_runtime_s": sum(runtimes) / len(runtimes) if runtimes else None,
        "states": states,
    }


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-trials", type=int, default=200, help="trials per side (default 200)")
    parser.add_argument(
        "--storages",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of raw Optuna and hpo"
    )
    opts = parser.parse_args(argv)
    kinds = [k.strip() for k in opts.storages.split(",") if k.strip()]
    unknown = sorted(set(kinds) - {"sqlite", "postgresql"})
    if unknown:
        parser.error(f"--storages: unknown {unknown}; use sqlite and/or postgresql")

    doc = read_study(STUDY)
    doc["budget"]["n_trials"] = opts.n_trials
    print(f"{opts.n_trials} one-step trials per side; storages: {', '.join(kinds)}", flush=True)
    # Warm-up, not measured: the imports and first calls.
    model_init_s(doc)
    step_and_eval_s(doc)

    print(f"before: {load_line()}", flush=True)
    rows, spreads = [], []
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            raws: list[float] = []
            runs: list[dict[str, Any]] = []
            inits: list[float] = []
            works: list[float] = []
            for round_ in range(opts.rounds):  # interleaved: drift hits both sides alike
                print(f"[{kind}] round {round_ + 1}: raw Optuna ...", flush=True)
                with scratch_storage(kind, workdir, f"raw{round_}") as url:
                    raws.append(raw_optuna_per_trial(doc, url, opts.n_trials))
                # The trial's own work is measured in every round too: taken out of hpo's
                # time, a figure from another moment would carry the machine's drift.
                inits.append(model_init_s(doc))
                works.append(step_and_eval_s(doc))
                print(f"[{kind}] round {round_ + 1}: hpo run ...", flush=True)
                with scratch_storage(kind, workdir, f"hpo{round_}") as url:
                    runs.append(hpo_per_trial(doc, url, workdir))
            ratios = [
                (run["per_trial_s"] - work_s - init_s) / raw
                for run, raw, work_s, init_s in zip(runs, raws, works, inits, strict=True)
            ]
            spreads.append((kind, raws, [r["per_trial_s"] for r in runs], ratios, works))
            raw_s = statistics.median(raws)
            median_round = ratios.index(statistics.median_low(ratios))
            ours = runs[median_round]
            work_s, init_s = works[median_round], inits[median_round]
            outside_s = ours["per_trial_s"] - work_s
            rows.append(
                [
                    kind,
                    raw_s * 1e3,
                    ours["per_trial_s"] * 1e3,
                    ours["startup_s"],
                    work_s * 1e3,
                    None if ours["train_runtime_s"] is None else ours["train_runtime_s"] * 1e3,
                    None
                    if ours["train_runtime_s"] is None
                    else (ours["per_trial_s"] - ours["train_runtime_s"]) * 1e3,
                    outside_s * 1e3,
                    init_s * 1e3,
                    statistics.median(ratios),
                    "MET" if statistics.median(ratios) <= TARGET_RATIO else "NOT MET",
                    " ".join(f"{k.lower()}={v}" for k, v in sorted(ours["states"].items())),
                ]
            )

    print(f"\nmeasured: {machine_line()}")
    print(
        table(
            [
                "storage",
                "raw optuna ms/trial",
                "hpo ms/trial",
                "hpo start s",
                "step+eval ms",
                "train() ms",
                "outside train() ms",
                "hpo outside ms",
                "model_init ms",
                "(outside - init) / raw",
                f"target <= {TARGET_RATIO}",
                "trials",
            ],
            rows,
        )
    )
    print(
        "hpo ms/trial = first trial's start to last trial's end in the storage / finished "
        "trials (steady state); hpo start = `hpo run` launch to the first trial's start "
        "(process, imports, data cache, workers: paid once per run); outside = that minus one training step + one evaluation (plain "
        "torch, same model and batches); train() = the trainer's loop as each trial recorded it "
        "(step, evaluation, checkpoint, report); outside train() = hpo ms/trial minus train(): "
        "ask, suggest, user attrs, tell, model_init, gc, the worker loop. Under load the "
        "step+eval estimate is noisy; outside train() is the steadier figure."
    )
    for kind, raws, ours, ratios, works in spreads:
        print(f"[{kind}] raw Optuna s/trial: {median_range(raws)}")
        print(f"[{kind}] step+eval s: {median_range(works)}")
        print(f"[{kind}] hpo s/trial: {median_range(ours)}")
        print(f"[{kind}] (outside - init) / raw: {median_range(ratios)}")
    print(f"after: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
