"""Record learning curves of the bench study, for choosing the default pruner by replay.

Runs `hpo run` on bench/studies/hpo_vs_transformers.yaml with a random sampler and no pruner
(every trial trains all its steps), then writes every trial's params and intermediate values
(eval_loss at each evaluation's global step) to bench/curves/hpo_vs_transformers.json.
bench/replay_pruners.py simulates pruners over those curves. The file is committed: it is
small, and it is the evidence the default pruner was chosen on.

Run:  python bench/record_curves.py                       (40 curves, workers 2)
      python bench/record_curves.py --n-trials 4 --max-steps 50 --out /tmp/c.json   (smoke)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `hpo` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, load_line, read_study, run_hpo, write_study

STUDY = "hpo_vs_transformers"
DEFAULT_OUT = BENCH_DIR / "curves" / f"{STUDY}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--max-steps", type=int, help="override training.max_steps")
    parser.add_argument("--seed", type=int, default=100, help="the random sampler's seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--from-storage", help="dump the finished trials of this storage instead")
    parser.add_argument(
        "--append", action="store_true", help="add to the curves already in --out (another seed)"
    )
    opts = parser.parse_args(argv)

    doc = read_study(STUDY)
    doc["name"] = f"{STUDY}_curves"
    doc["budget"] = {"n_trials": opts.n_trials}
    doc["sampler"] = {"name": "random", "seed": opts.seed}
    doc["pruner"] = "none"
    if opts.max_steps:
        doc["training"]["max_steps"] = opts.max_steps
        doc["training"]["eval_steps"] = min(doc["training"]["eval_steps"], opts.max_steps)
    print(f"before: {load_line()}", flush=True)
    if opts.from_storage:  # a run cut short (or recorded elsewhere): dump what it finished
        dump_curves(opts.from_storage, doc, opts.out, append=opts.append)
        return 0
    with tempfile.TemporaryDirectory(prefix="hpo-curves-") as tmp:
        path = write_study(doc, Path(tmp))
        storage = f"sqlite:///{Path(tmp) / (doc['name'] + '.db')}"
        result = run_hpo(["run", str(path)])
        if result.returncode != 0:
            raise SystemExit(f"bench: `hpo run {path}` exited with {result.returncode}")
        dump_curves(storage, doc, opts.out, append=opts.append)
    print(f"after: {load_line()}")
    return 0


def dump_curves(storage: str, doc: dict, out: Path, *, append: bool = False) -> None:
    """Every COMPLETE trial's params and (step, value) curve, with the settings they ran under."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=doc["name"], storage=storage).get_trials()
    curves = [
        {
            "sampler_seed": doc["sampler"]["seed"],
            "number": t.number,
            "params": t.params,
            "curve": [[step, value] for step, value in sorted(t.intermediate_values.items())],
            # The trial's value: on the whole eval set, where the curve's evaluations during
            # training saw a subset (hpo's default: search-time evaluations on a fixed subset).
            "value": t.value,
        }
        for t in trials
        if t.state.name == "COMPLETE"
    ]
    from bench.hf_search import block_arrays

    record = {
        "study": STUDY,
        "n_eval": len(block_arrays(doc["data"])[1]),  # eval rows: what an evaluation costs
        "training": doc["training"],
        "space": doc["space"],
        "curves": curves,
    }
    if append and out.exists():
        record["curves"] = json.loads(out.read_text(encoding="utf-8"))["curves"] + curves
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{len(record['curves'])} curves -> {out}")


if __name__ == "__main__":
    sys.exit(main())
