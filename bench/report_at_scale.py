"""`hpo report` on a 10,000-trial study: how long the whole command takes and how big the page is.

Builds the same study as bench/status_at_scale.py (N trials, 20 intermediate values each, three
params, bulk-inserted into optuna's tables), then runs `hpo report STUDY -o report.html` as a
fresh process, the way a user runs it, and prints its wall and CPU time and the page's size next
to how long `optuna.load_study(...).trials` alone takes (the report reads the trials through
optuna, so that is its floor). It prints figures; it asserts nothing.

Rerun:  python bench/report_at_scale.py [--trials 10000] [--storage URL] [--png]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH_DIR))

from status_at_scale import STUDY, build_study  # noqa: E402

from bench._common import table  # noqa: E402
from hpo.storage.urls import mask_url, with_driver  # noqa: E402


def write_study_file(directory: Path, url: str) -> Path:
    path = directory / "study.yaml"
    path.write_text(
        f"name: {STUDY}\nstorage: {url}\nobjective: {{metric: eval_loss, direction: minimize}}\n",
        encoding="utf-8",
    )
    return path


def timed_process(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one run of `command`, and its output; exits if it fails."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{output[-3000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, output


def time_report(study_file: Path, output: Path, png_dir: Path | None = None) -> tuple[float, float]:
    """`hpo report` as a fresh process: (wall s, cpu s)."""
    command = [sys.executable, "-m", "hpo.cli", "report", str(study_file), "-o", str(output)]
    if png_dir is not None:
        command += ["--png", str(png_dir)]
    wall, cpu, _ = timed_process(command)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--storage", help="an empty database URL (default: a temporary SQLite)")
    parser.add_argument("--png", action="store_true", help="also time --png (needs Chromium)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hpo-report-bench-"))
    url = args.storage or f"sqlite:///{workdir / 'study.db'}"
    try:
        build_s = build_study(url, args.trials)
        print(f"built {args.trials} trials in {build_s:.1f} s on {mask_url(url)}")
        study_file = write_study_file(workdir, url)
        report = workdir / "report.html"
        rows = []
        wall, cpu = time_report(study_file, report)
        rows.append(("hpo report", wall, cpu))
        if args.png:
            wall, cpu = time_report(study_file, report, workdir / "png")
            rows.append(("hpo report --png", wall, cpu))
        load = (
            "import optuna; optuna.logging.set_verbosity(optuna.logging.WARNING); "
            f"s = optuna.load_study(study_name={STUDY!r}, storage={with_driver(url)!r}); "
            "print(len(s.trials))"
        )
        wall, cpu, _ = timed_process([sys.executable, "-c", load])
        rows.append(("optuna.load_study().trials (floor)", wall, cpu))
        print(
            f"\n{args.trials} trials, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        print(table(["command (whole process)", "wall s", "cpu s"], rows))
        print(f"report.html: {report.stat().st_size / 1e6:.2f} MB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
