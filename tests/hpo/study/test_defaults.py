"""The defaults that make `hpo run` fast, checked by behaviour (never by time).

- A study without a `pruner` key gets successive halving whose first rung is the first
  evaluation (min_resource = eval_steps); that pruner really cuts a clearly bad trial there,
  and over the recorded learning curves of the bench study it spends fewer optimizer steps
  than Hyperband (the previous default) on the same draws, for the same best value.
- Local workers split the machine's cores between them: their torch thread counts add up to
  the cores, seen from inside real worker processes.

(That data is tokenized once per study is tested in tests/hpo/data/test_cache.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from helpers.study_files import DELETE, write_study

from hpo.backends.placement import available_cores, thread_split
from hpo.search.components import build_pruner
from hpo.study import load

REPO = Path(__file__).resolve().parents[3]
EVAL_STEPS = 25
MAX_STEPS = 200


def loaded_default_pruner(tmp_path: Path, training: dict | None = None):
    """The pruner spec of a real study file that names no pruner."""
    changes = {
        "pruner": DELETE,
        "training": training
        or {"max_steps": MAX_STEPS, "eval_strategy": "steps", "eval_steps": EVAL_STEPS},
    }
    return load(write_study(tmp_path, changes)).pruner


# ---------------------------------------------------------------------------- default pruner


@pytest.mark.parametrize("eval_steps", [10, 25, 50])
def test_a_study_without_pruner_gets_successive_halving_from_the_first_evaluation(
    tmp_path, eval_steps
):
    pruner = loaded_default_pruner(
        tmp_path, {"max_steps": MAX_STEPS, "eval_strategy": "steps", "eval_steps": eval_steps}
    )
    assert pruner.name == "successive_halving"
    assert pruner.options["min_resource"] == eval_steps
    assert isinstance(build_pruner(pruner), optuna.pruners.SuccessiveHalvingPruner)


def test_without_stepwise_evaluation_the_default_is_no_pruning(tmp_path):
    # Nothing is reported before the end of a trial, so there is nothing to prune on.
    pruner = loaded_default_pruner(tmp_path, {"max_steps": MAX_STEPS, "eval_strategy": "no"})
    assert pruner.name == "none"


def report_curve(study: optuna.Study, final: float) -> None:
    """A good trial: reports at every evaluation and completes, whatever the pruner says.

    It asks should_prune() after each report, as the trainer does: successive halving records
    a trial's value at a rung only when it is consulted there.
    """
    trial = study.ask()
    # Up to the last first rung (3 evaluations) is all the pruner decisions below look at.
    for step in range(EVAL_STEPS, 3 * EVAL_STEPS + 1, EVAL_STEPS):
        trial.report(final + 1.0 / step, step)  # improving towards `final`
        trial.should_prune()
    study.tell(trial, final)


def first_pruned_step(study: optuna.Study, bad_value: float) -> int | None:
    """A clearly bad trial: reports `bad_value` at each evaluation until the pruner stops it."""
    trial = study.ask()
    for step in range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS):
        trial.report(bad_value, step)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return step
    study.tell(trial, bad_value)
    return None


def test_default_pruner_cuts_a_clearly_bad_trial_at_its_first_rung(tmp_path):
    spec = loaded_default_pruner(tmp_path)
    study = optuna.create_study(
        study_name="defaults",
        storage=f"sqlite:///{tmp_path / 'prune.db'}",
        direction="minimize",
        pruner=build_pruner(spec),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for i in range(12):
        report_curve(study, final=2.0 + 0.01 * i)

    pruned_at = [first_pruned_step(study, bad_value=9.0) for _ in range(8)]

    # Every bad trial stops at the first rung: its first evaluation.
    assert pruned_at == [EVAL_STEPS] * 8, pruned_at
    # The good trials were never judged worse than the bad ones: they all completed.
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 12


def test_default_pruner_keeps_a_trial_as_good_as_the_best(tmp_path):
    # The other half of "cuts bad trials": a trial that matches the leaders is not pruned.
    spec = loaded_default_pruner(tmp_path)
    study = optuna.create_study(
        study_name="defaults",
        storage=f"sqlite:///{tmp_path / 'keep.db'}",
        direction="minimize",
        pruner=build_pruner(spec),
    )
    for i in range(12):
        report_curve(study, final=2.0 + 0.01 * i)
    assert [first_pruned_step(study, bad_value=1.5) for _ in range(4)] == [None] * 4


def test_default_pruner_spends_fewer_steps_than_hyperband_on_the_same_draws(tmp_path):
    # Real learning curves of the bench study (bench/record_curves.py), replayed through the
    # real pruners as two workers would report them: the same 40 draws of 10 trials each.
    import random

    from bench.replay_pruners import CURVES, EvalCost, load_curves, replay

    pool = load_curves(CURVES)
    assert len(pool) > 16
    rng = random.Random(0)
    draws = [rng.sample(pool, 10) for _ in range(40)]
    cost = EvalCost(256, 0)
    spec = loaded_default_pruner(tmp_path)
    ours = [replay(draw, lambda: build_pruner(spec), 2, cost) for draw in draws]
    hyperband = [
        replay(
            draw,
            lambda: optuna.pruners.HyperbandPruner(
                min_resource=EVAL_STEPS, max_resource=MAX_STEPS, reduction_factor=3
            ),
            2,
            cost,
        )
        for draw in draws
    ]
    assert sum(o.steps for o in ours) < 0.85 * sum(h.steps for h in hyperband)
    gaps = sorted(o.best - h.best for o, h in zip(ours, hyperband, strict=True))
    assert gaps[len(gaps) // 2] <= 0.0  # the same best value in the median draw
    assert sum(g > 0.03 for g in gaps) <= len(gaps) // 10


# ---------------------------------------------------------------------------- thread split


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16])
def test_thread_split_uses_every_core_once(cores):
    for workers in range(1, cores + 1):
        threads = thread_split(cores, workers)
        assert len(threads) == workers
        assert sum(threads) == cores
        assert max(threads) - min(threads) <= 1
        assert min(threads) >= 1


def test_more_workers_than_cores_get_one_thread_each():
    assert thread_split(2, 5) == [1, 1, 1, 1, 1]


def test_thread_split_rejects_zero_workers():
    with pytest.raises(ValueError, match="workers=0"):
        thread_split(4, 0)


FACTORY = textwrap.dedent(
    """
    import os
    import time

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel


    def parent_of(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])


    def hpo_run_pid():
        # The `hpo run` process this one belongs to (itself, or an ancestor): workers may be
        # its children or the children of a fork server it started.
        pid = os.getpid()
        while pid > 1:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"hpo.cli" in cmdline.read():
                    return pid
            pid = parent_of(pid)
        return 0


    def tiny_gpt2(**overrides):
        # Every model_init call says which process built it and how many torch threads it had.
        path = os.environ["HPO_TEST_THREADS_LOG"]
        run_pid = hpo_run_pid()
        with open(path, "a") as log:
            log.write(f"{os.getpid()} {run_pid} {torch.get_num_threads()}\\n")
        # Rendezvous: hold each worker's first trial until every worker has logged, so that a
        # worker that starts first cannot finish the whole budget alone.
        deadline = time.monotonic() + 60
        while run_pid != os.getpid() and time.monotonic() < deadline:
            with open(path) as log:
                rows = [line.split() for line in log if line.strip()]
            workers = {pid for pid, run, _ in rows if run == str(run_pid) and pid != run}
            if len(workers) >= int(os.environ["HPO_TEST_WORKERS"]):
                break
            time.sleep(0.1)
        config = GPT2Config(
            vocab_size=256, n_positions=32, n_embd=16, n_layer=1, n_head=2,
            bos_token_id=0, eos_token_id=0,
        )
        return GPT2LMHeadModel(config)
    """
)


@pytest.mark.slow
def test_local_workers_torch_threads_add_up_to_the_cores(tmp_path):
    (tmp_path / "threads_factory.py").write_text(FACTORY)
    log = tmp_path / "threads.log"
    workers = 2
    path = write_study(
        tmp_path,
        {
            "storage": f"sqlite:///{tmp_path / 'threads.db'}",
            "workers": workers,
            "budget": {"n_trials": 2 * workers},
            "model": {"config": DELETE, "factory": "threads_factory:tiny_gpt2"},
            "data": {"corpus": "pydoc-topics", "tokenizer": "bytes", "block_size": 32},
            "training": {
                "output_dir": str(tmp_path / "runs"),
                "max_steps": 2,
                "eval_strategy": "steps",
                "eval_steps": 2,
                "per_device_train_batch_size": 2,
            },
            "space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        },
    )
    env = {
        **os.environ,
        "HPO_TEST_THREADS_LOG": str(log),
        "HPO_TEST_WORKERS": str(workers),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0, output

    # The worker processes of this `hpo run` (not the run process itself) build the models.
    threads_by_worker = {}
    for line in log.read_text().splitlines():
        pid, run_pid, threads = (int(x) for x in line.split())
        if run_pid == run.pid and pid != run.pid:
            threads_by_worker[pid] = threads
    assert len(threads_by_worker) == workers, (threads_by_worker, output)
    assert sum(threads_by_worker.values()) == max(available_cores(), workers), threads_by_worker
