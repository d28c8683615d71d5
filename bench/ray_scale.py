"""N one-second trials through `hpo run` with `backend: ray` on this machine, against the ideal.

Each trial is one training step whose forward sleeps 1 s (bench/sleepy_model.py) plus one
evaluation, so everything beyond 1 s per trial is what hpo + Ray Tune add. With one CPU per
trial the ideal is N x 1 s / CPUs; the run's wall time (Ray's start included) and the span from
the first trial's start to the last one's end (read back from the study's storage) are printed
beside it, with the load average before and after.

Ray's published anchor (Tune's scalability tests): 10,000 one-second trials on 16 CPUs in 715 s,
against 625 s ideal (x1.14).

Run:  python bench/ray_scale.py                      (1,000 trials, a local Ray)
      python bench/ray_scale.py --trials 10          (a smoke check)
      python bench/ray_scale.py --address 127.0.0.1:6391   (an existing `ray start --head`)

It prints figures; it asserts nothing. Run the full size on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import finished_trials, machine_line, run_hpo, table, write_study
from bench.sleepy_model import SLEEP_ENV

STUDY = "ray_scale"
# Ray Tune's scalability anchor: 10,000 one-second trials on 16 CPUs.
ANCHOR_TRIALS, ANCHOR_CPUS, ANCHOR_WALL_S = 10_000, 16, 715.0
ANCHOR_IDEAL_S = ANCHOR_TRIALS * 1.0 / ANCHOR_CPUS


def study_doc(trials: int, corpus: Path, address: str) -> dict:
    return {
        "name": STUDY,
        "backend": "ray",
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "budget": {"n_trials": trials},
        "workers": "auto",  # as many trials at once as Ray has CPUs
        "sampler": {"name": "random", "seed": 0},
        "ray": {"address": address, "resources_per_trial": {"cpu": 1, "gpu": 0}},
        "model": {"factory": "bench.sleepy_model:sleepy_gpt2", "task": "causal-lm"},
        "data": {"files": [str(corpus)], "block_size": 32, "max_eval_samples": 8},
        "training": {
            "max_steps": 1,
            "eval_strategy": "steps",
            "eval_steps": 1,
            "per_device_train_batch_size": 4,
            "per_device_eval_batch_size": 8,
            "seed": 0,
        },
        "space": {"learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}},
    }


def cluster_cpus(address: str) -> int:
    """CPUs the trials can use: the cluster's (an address) or this machine's (local)."""
    if address == "local":
        return os.cpu_count() or 1
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        return int(ray.cluster_resources().get("CPU", 1))
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds of 'training' a trial")
    parser.add_argument(
        "--address", default="local", help="a running cluster (default: a new local Ray)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hpo-ray-scale-"))
    try:
        corpus = workdir / "corpus.txt"
        corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 200, encoding="utf-8")
        cpus = cluster_cpus(args.address)
        study = write_study(study_doc(args.trials, corpus, args.address), workdir)
        storage = f"sqlite:///{workdir / (STUDY + '.db')}"
        load_before = os.getloadavg()
        run = run_hpo(["run", str(study)], env={SLEEP_ENV: str(args.sleep)})
        load_after = os.getloadavg()
        if run.returncode != 0:
            print(f"hpo run failed (exit {run.returncode})", file=sys.stderr)
            return 1
        trials = finished_trials(storage, STUDY, run.started_at)
        complete = [t for t in trials if t.state == "COMPLETE"]
        span = max(t.elapsed_s for t in trials) - min(t.started_s for t in trials)
        ideal = args.trials * args.sleep / cpus
        print(f"\n{machine_line()}")
        print(
            f"load average before: {', '.join(f'{x:.1f}' for x in load_before)}; "
            f"after: {', '.join(f'{x:.1f}' for x in load_after)}"
        )
        rows = [
            (
                f"hpo run, backend ray ({args.trials} x {args.sleep:g} s, {cpus} CPUs)",
                run.wall_s,
                ideal,
                run.wall_s / ideal,
            ),
            ("  first trial start -> last trial end", span, ideal, span / ideal),
            (
                f"Ray Tune anchor ({ANCHOR_TRIALS} x 1 s, {ANCHOR_CPUS} CPUs)",
                ANCHOR_WALL_S,
                ANCHOR_IDEAL_S,
                ANCHOR_WALL_S / ANCHOR_IDEAL_S,
            ),
        ]
        print(table(["run", "wall s", "ideal s", "x ideal"], rows))
        print(
            f"{len(complete)}/{args.trials} trials complete; overhead over the ideal: "
            f"{run.wall_s - ideal:.1f} s whole run, {span - ideal:.1f} s trial span"
        )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
