"""`hpo submit`: run a study as a Ray job on a cluster, through the Jobs API.

    hpo submit STUDY --address http://HEAD:8265 [--follow] [--working-dir DIR]
    hpo submit --status JOB --address http://HEAD:8265
    hpo submit --stop JOB --address http://HEAD:8265

The job runs `python -m hpo.cli run STUDY` on the cluster, with the working directory (the
project, holding the study) uploaded as the job's runtime_env working_dir; when the
directory does not hold the `hpo` and `trainer` packages, they are uploaded too.

Ray's token authentication: the token comes from RAY_AUTH_TOKEN, or the file named by
RAY_AUTH_TOKEN_PATH, or Ray's default file ~/.ray/auth_token (the same places Ray looks), and
goes only into the Authorization header. It is never printed, and it is removed from any
error text before that is shown.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.backends.ray.tuner import OUTPUT_DIR_ENV
from hpo.errors import HpoError

ADDRESS_ENV = "RAY_API_SERVER_ADDRESS"  # the variable Ray's own `ray job` commands read
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")

# Never uploaded: results, environments, caches, databases.
UPLOAD_EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "runs",
    "**/__pycache__",
    "*.pyc",
    "*.db",
    "*.db-wal",
    "*.db-shm",
    ".pytest_cache",
    ".ruff_cache",
]

EXIT_BY_STATUS = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}


def add_submit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `submit` to the `hpo` command's subparsers; its handler is `cmd_submit`."""
    text = "Run a study as a job on a Ray cluster (Jobs API), or query / stop a job."
    parser = subparsers.add_parser("submit", help=text, description=text)
    parser.add_argument("study", nargs="?", help="the study file to run on the cluster")
    parser.add_argument(
        "--address",
        help=f"the cluster's dashboard URL, e.g. http://HEAD:8265 (default: ${ADDRESS_ENV})",
    )
    parser.add_argument(
        "--follow", action="store_true", help="stream the job's logs; exit with its status"
    )
    parser.add_argument(
        "--working-dir",
        help="the directory uploaded as the job's working_dir; it must hold the study "
        "(default: the current directory)",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", metavar="JOB", help="print a job's status")
    action.add_argument("--stop", metavar="JOB", help="stop a running job")
    parser.set_defaults(handler=cmd_submit)
    return parser


def cmd_submit(args: argparse.Namespace) -> int:
    address = args.address or os.environ.get(ADDRESS_ENV)
    if not address:
        raise HpoError(
            f"--address: no cluster given; pass --address http://HEAD:8265 or set {ADDRESS_ENV}"
        )
    if args.status or args.stop:
        if args.study:
            raise HpoError("--status/--stop take a job id, not a study file; drop STUDY")
        client = connect(address)
        if args.status:
            return print_status(client, args.status)
        return stop(client, args.stop)
    if not args.study:
        raise HpoError("STUDY: give the study file to submit (or --status JOB / --stop JOB)")
    job = prepare_job(args.study, working_dir=args.working_dir)  # validate before connecting
    client = connect(address)
    job_id = submit(client, job)
    print(job_id, flush=True)
    if not args.follow:
        print(f"follow it with: hpo submit --status {job_id} --address {address}", file=sys.stderr)
        return 0
    return follow(client, job_id)


# --- the client ---------------------------------------------------------------------------


def auth_token() -> str | None:
    """The cluster token from the environment (or Ray's token files); None when there is none."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_PATH_ENV)
    candidates = [Path(path)] if path else [DEFAULT_TOKEN_FILE.expanduser()]
    for candidate in candidates:
        try:
            token = candidate.read_text().strip()
        except OSError:
            if path:  # named explicitly: say so rather than send no token
                raise HpoError(
                    f"{TOKEN_PATH_ENV}={path}: cannot read the token file; fix the path, or "
                    f"set {TOKEN_ENV}"
                ) from None
            continue
        if token:
            return token
    return None


def connect(address: str) -> Any:
    """A JobSubmissionClient for `address`, authenticated when a token is available."""
    from ray.job_submission import JobSubmissionClient

    token = auth_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(address, headers=headers)
    except Exception as error:
        raise _client_error(error, address, token) from None


def _client_error(error: Exception, address: str, token: str | None) -> HpoError:
    text = _without(str(error), token).strip()
    if "Authentication" in type(error).__name__ or "Authentication" in text:
        hint = (
            f"the token in {TOKEN_ENV} was refused"
            if token
            else f"the cluster wants a token and none was found; set {TOKEN_ENV}"
        )
        return HpoError(
            f"Ray cluster at {address}: {hint} (get it on the head with `ray get-auth-token`)"
        )
    if isinstance(error, ConnectionError):
        return HpoError(
            f"--address {address}: no Ray dashboard answers there; check the URL (the Jobs API "
            "is on the dashboard port, 8265 by default) and that the head is up"
        )
    first_line = text.splitlines()[0] if text else type(error).__name__
    return HpoError(f"Ray cluster at {address}: {first_line}")


def _without(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


# --- submitting ---------------------------------------------------------------------------


def prepare_job(study: str, *, working_dir: str | None = None) -> dict[str, Any]:
    """The `submit_job` arguments for a study: validated here, so a bad study file stops
    (exit 2) before anything is uploaded."""
    from hpo.storage.urls import sqlite_path
    from hpo.study import load

    spec = load(study)
    root = Path(working_dir or os.getcwd()).resolve()
    study_path = Path(study).resolve()
    if not study_path.is_relative_to(root):
        raise HpoError(
            f"{study}: the study is outside the working dir {root}, which is what the cluster "
            "receives; move it under that directory or pass --working-dir"
        )
    if sqlite_path(spec.storage) is not None:
        print(
            "warning: the storage is a SQLite file, written on the cluster's head; use "
            "PostgreSQL to read the trials from here and from the dashboard",
            file=sys.stderr,
        )
    # The job runs in a temporary copy of the working dir: pin output_dir (and so Tune's
    # experiment and every checkpoint path the storage records) to a folder that lasts, so
    # that submitting the study again restores it.
    output_dir = Path(spec.output_dir).expanduser()
    runtime_env: dict[str, Any] = {
        "working_dir": str(root),
        "excludes": list(UPLOAD_EXCLUDES),
        "env_vars": {
            OUTPUT_DIR_ENV: str(output_dir if output_dir.is_absolute() else root / output_dir)
        },
    }
    packages = _packages_to_upload(root)
    if packages:
        runtime_env["py_modules"] = packages
    relative = shlex.quote(study_path.relative_to(root).as_posix())
    return {
        "entrypoint": f"python -m hpo.cli run {relative}",
        "runtime_env": runtime_env,
        "submission_id": f"hpo-{_slug(spec.name)}-{uuid.uuid4().hex[:8]}",
        "metadata": {"hpo_study": spec.name},
    }


def submit(client: Any, job: dict[str, Any]) -> str:
    """Start the job prepared by `prepare_job`; its id."""
    try:
        return client.submit_job(**job)
    except Exception as error:
        raise _client_error(error, client.get_address(), auth_token()) from None


def _packages_to_upload(root: Path) -> list[str]:
    """The local `hpo` and `trainer` package folders, unless the working dir holds them."""
    import hpo
    import trainer

    packages = []
    for package in (hpo, trainer):
        assert package.__file__ is not None  # regular packages, imported from files
        folder = Path(package.__file__).resolve().parent
        if not folder.is_relative_to(root):
            packages.append(str(folder))
    return packages


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40]


# --- following, status, stop --------------------------------------------------------------


def follow(client: Any, job_id: str) -> int:
    """Stream the job's logs to stdout until it ends; its status as the exit code."""

    async def stream() -> None:
        async for lines in client.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    try:
        import asyncio  # here: `hpo status` builds this parser and should not pay for asyncio

        asyncio.run(stream())
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the job goes on (hpo submit --stop {job_id} stops it)",
            file=sys.stderr,
        )
        return 130
    status = str(client.get_job_status(job_id).value)
    print(f"job {job_id}: {status}", file=sys.stderr)
    return EXIT_BY_STATUS.get(status, 1)


def print_status(client: Any, job_id: str) -> int:
    try:
        info = client.get_job_info(job_id)
    except Exception as error:
        raise _client_error(error, client.get_address(), auth_token()) from None
    status = str(info.status.value)
    message = f": {info.message}" if info.message else ""
    print(f"{job_id} {status}{message}")
    return 0


def stop(client: Any, job_id: str) -> int:
    try:
        stopped = client.stop_job(job_id)
    except Exception as error:
        raise _client_error(error, client.get_address(), auth_token()) from None
    print(f"{job_id}: stop requested" if stopped else f"{job_id}: already finished")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m hpo.backends.ray.submit ...`: the same as `hpo submit ...`."""
    parser = argparse.ArgumentParser(prog="hpo")
    add_submit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["submit", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except HpoError as error:
        print(f"error: {_without(str(error), os.environ.get(TOKEN_ENV))}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
