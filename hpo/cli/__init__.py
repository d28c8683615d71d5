"""The `hpo` command: argument parsing and printing only.

Each command imports what it needs inside its handler, so that `hpo status` and `hpo best`
never pay for importing torch or transformers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _load(args: argparse.Namespace, on_shape_ok=None):
    from hpo.study import load

    return load(
        args.study,
        storage=getattr(args, "storage", None),
        n_trials=getattr(args, "n_trials", None),
        workers=getattr(args, "workers", None),
        on_shape_ok=on_shape_ok,
    )


def _start_worker_imports(backend: str, workers: int, raw: dict) -> None:
    """The Optuna backend's fork server imports torch while validation goes on, so the first trial
    starts sooner: the imports overlap the study file's checks instead of following them."""
    if backend != "optuna":
        return
    from hpo.backends.optuna.processes import start_fork_server

    config = (raw.get("model") or {}).get("config")
    start_fork_server(workers, config.get("model_type") if isinstance(config, dict) else None)


def cmd_run(args: argparse.Namespace) -> int:
    from hpo import backends

    spec = _load(args, on_shape_ok=_start_worker_imports)
    status = backends.get(spec.backend).run(spec, address=args.address)
    if status == 0 and spec.push_best_to_hub:
        from hpo.report.hub import push_best

        print(push_best(spec))
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    from hpo import backends

    spec = _load(args)
    return backends.get(spec.backend).join(spec)


def cmd_status(args: argparse.Namespace) -> int:
    from hpo.report.status import format_status
    from hpo.storage import reader

    spec = _load_for_inspection(args)
    report = reader.status(spec.storage, spec.name)
    print(json.dumps(report, indent=2) if args.json else format_status(report, spec))
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from hpo.report.status import format_best
    from hpo.storage import reader

    spec = _load_for_inspection(args)
    report = reader.best(spec.storage, spec.name)
    print(json.dumps(report, indent=2) if args.json else format_best(report))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hpo.report.export import export_best

    path = export_best(_load_for_inspection(args), args.output)
    print(f"wrote {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hpo.report.export import train_from_export

    output = train_from_export(args.config)
    print(json.dumps(output.metrics, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hpo.report.html import write_report

    written = write_report(_load_for_inspection(args), args.output, png_dir=args.png)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hpo.report.dashboard import serve

    spec = _load_for_inspection(args)
    return serve(spec.storage, host=args.host, port=args.port)


def _load_for_inspection(args: argparse.Namespace):
    """Inspection commands read the study file shallowly: name and storage only, no data checks."""
    from hpo.study import load_for_inspection

    return load_for_inspection(args.study, storage=getattr(args, "storage", None))


def _port(text: str) -> int:
    """A TCP port number, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port number from 0 to 65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo", description="Hyperparameter search for PyTorch / Transformers models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("study", help="path to the study file (study.yaml)")
        p.set_defaults(handler=handler)
        return p

    run = add("run", cmd_run, "Run a study to its budget (continues it if it exists).")
    run.add_argument("--workers", type=int, help="trials in parallel on this machine")
    run.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")
    run.add_argument("--n-trials", type=int, help="finished trials to reach, over the whole study")
    run.add_argument("--address", help="Ray cluster to run on (backend ray); overrides ray.address")

    worker = add("worker", cmd_worker, "Join a running study as one more worker.")
    worker.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")

    for name, handler, text in (
        ("status", cmd_status, "Counts by state, the best trial and the running trials."),
        ("best", cmd_best, "The best trial: number, value(s), params and checkpoint."),
    ):
        p = add(name, handler, text)
        p.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    export = add("export", cmd_export, "Write a training config with the best params.")
    export.add_argument("-o", "--output", required=True, help="file to write (YAML or JSON)")
    export.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")

    report = add("report", cmd_report, "Write the study as one offline HTML page of plots.")
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    report.add_argument("--png", metavar="DIR", help="also write each plot as a PNG into DIR")
    report.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")

    train = sub.add_parser(
        "train",
        help="Retrain from an exported config.",
        description="Retrain from an exported config.",
    )
    train.add_argument("config", help="a file written by `hpo export`")
    train.set_defaults(handler=cmd_train)

    from hpo.backends.ray.submit import add_submit_parser

    add_submit_parser(sub)

    dash = add("dashboard", cmd_dashboard, "Open optuna-dashboard on the study's storage.")
    dash.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default: local only)")
    dash.add_argument("--storage", help="storage URL (overrides the study file and HPO_STORAGE)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hpo.errors import HpoError

    try:
        return int(args.handler(args) or 0)
    except HpoError as error:
        # A bad input: one screen, no traceback, a non-zero exit (2 for a bad study file).
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """The `hpo` executable and `python -m hpo.cli`: `main`, then exit with its code."""
    code = main()
    # Nothing is garbage any more: without this, the interpreter's last collections walk the
    # whole heap of torch and transformers on the way out (about 1 s after `hpo run`). Only
    # here, in a process about to exit: `main` also runs inside tests, which must collect.
    # atexit handlers still run.
    import gc

    gc.freeze()
    sys.exit(code)
