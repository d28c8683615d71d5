"""`hpo dashboard`: optuna-dashboard on the study's storage, local-only unless asked."""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer

from hpo.errors import HpoError
from hpo.storage.urls import mask_url, scrub_passwords, with_driver


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """The dashboard polls several endpoints at once; one thread per request keeps it live."""

    daemon_threads = True


def serve(url: str, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Serve optuna-dashboard for `url` until interrupted; returns the exit status.

    `port=0` picks a free port; the address actually bound is printed either way.
    """
    from wsgiref.simple_server import make_server

    from hpo.storage import reader

    # A clear error for a missing file or database, first. optuna-dashboard reads the trials
    # through optuna (compatibility check skipped), so our own SQL's schema check does not apply.
    names = reader.study_names(url, check_schema=False)
    app = _dashboard_app(url)
    try:
        httpd = make_server(host, port, app, server_class=_ThreadedWSGIServer)
    except OSError as error:
        raise HpoError(
            f"cannot listen on {host}:{port}: {error.strerror or error}; "
            "pass a free port with --port (or --port 0 for any free one)"
        ) from None
    bound_port = httpd.server_port
    shown_host = f"[{host}]" if ":" in host else host
    print(f"storage    {mask_url(url)}  ({len(names)} study(ies))", flush=True)
    print(f"dashboard  http://{shown_host}:{bound_port}/dashboard/", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: bound to {host}: anyone who reaches this address can edit the study")
    print("Ctrl-C to stop.", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", file=sys.stderr)
    finally:
        httpd.server_close()
    return 0


def _dashboard_app(url: str):
    import optuna
    import optuna_dashboard

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        # The dashboard reads a study the workers own: it creates no tables and runs no
        # schema check that could stall on a busy database.
        storage = optuna.storages.RDBStorage(
            with_driver(url), skip_compatibility_check=True, skip_table_creation=True
        )
    except Exception as error:
        reason = scrub_passwords(str(getattr(error, "orig", None) or error), url)
        raise HpoError(f"cannot open storage {mask_url(url)}: {reason.strip()}") from None
    return optuna_dashboard.wsgi(storage)
