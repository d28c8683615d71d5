"""How long from `hpo run` to the first trial, next to the imports no run can skip?

Interleaved rounds of:

- imports: a fresh `python -c "import torch, transformers; from transformers import
  GPT2LMHeadModel"`, timed whole: the floor for any process that trains this model (a bare
  `import torch, transformers` is timed too: transformers loads its models lazily, so that
  alone is about half of it);
- hpo run: `hpo run` of a 2-trial, 25-step copy of bench/studies/hpo_vs_transformers.yaml on a
  fresh SQLite file, timed from launch to the first trial's start as the storage recorded it,
  and to the process's exit after its last trial ended.

Target: the first trial starts within 1 s of the imports.

Run:  python bench/startup.py [--rounds 3]

It prints a table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

IMPORTS = "import torch, transformers; from transformers import GPT2LMHeadModel"
BARE_IMPORTS = "import torch, transformers"
TARGET_S = 1.0


def imports_s(code: str = IMPORTS) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def hpo_run_s(workdir: Path, round_: int) -> tuple[float, float]:
    """(launch to the first trial's start, last trial's end to the process's exit), seconds."""
    doc = read_study("hpo_vs_transformers")
    doc["budget"]["n_trials"] = 2
    doc["training"]["max_steps"] = 25
    doc["training"]["eval_steps"] = 25  # one evaluation, at the end
    folder = workdir / f"round{round_}"
    folder.mkdir()
    storage = f"sqlite:///{folder / 'study.db'}"
    result = run_hpo(["run", str(write_study(doc, folder, storage=storage))])
    if result.returncode != 0:
        raise SystemExit(f"bench: `hpo run` exited with {result.returncode}")
    trials = finished_trials(storage, doc["name"], result.started_at)
    first_start = min(t.started_s for t in trials)
    last_end = max(t.elapsed_s for t in trials)
    return first_start, result.wall_s - last_end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    opts = parser.parse_args(argv)
    print(f"before: {load_line()}", flush=True)
    imports, bare, first_trial, tail = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="hpo-bench-startup-") as tmp:
        for round_ in range(opts.rounds):  # interleaved: drift hits both alike
            imports.append(imports_s())
            bare.append(imports_s(BARE_IMPORTS))
            start, end = hpo_run_s(Path(tmp), round_)
            first_trial.append(start)
            tail.append(end)
            print(
                f"round {round_ + 1}: imports {imports[-1]:.2f} s, first trial {start:.2f} s, "
                f"exit {end:.2f} s after the last trial",
                flush=True,
            )
    print(f"after: {load_line()}")
    print(f"\n{machine_line()}")
    gaps = [t - i for t, i in zip(first_trial, imports, strict=True)]
    print(
        table(
            ["measure", "seconds: median (range, rounds)"],
            [
                ["imports (python -c ...)", median_range(imports)],
                ["bare import torch, transformers", median_range(bare)],
                ["hpo run -> first trial starts", median_range(first_trial)],
                ["first trial - imports, same round", median_range(gaps)],
                [
                    "first trial - bare import, same round",
                    median_range([t - b for t, b in zip(first_trial, bare, strict=True)]),
                ],
                ["last trial ends -> hpo run exits", median_range(tail)],
            ],
        )
    )
    gap = sorted(gaps)[len(gaps) // 2]
    verdict = "met" if gap <= TARGET_S else "NOT MET"
    print(f"target: first trial within {TARGET_S:.0f} s of the imports -> {verdict}")
    print("(the imports a GPT-2 trial needs; the bare import is shown for comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
