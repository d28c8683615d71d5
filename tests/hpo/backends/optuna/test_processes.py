"""hpo.backends.optuna.processes: the fork server, started early, holds the imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


def test_workers_fork_from_a_server_started_before_the_parent_imports_torch(tmp_path):
    # `hpo run` starts the fork server once the file's shape is checked. A process
    # forked from it already holds torch, transformers and what opening the storage imports,
    # with all of it frozen out of the collector's scans, although the process that started
    # the server has imported none of it: the server imported them, once, for every worker.
    (tmp_path / "probe.py").write_text(
        textwrap.dedent(
            """
            import gc, os, sys

            def probe(queue):
                queue.put([
                    os.getppid(),
                    "torch" in sys.modules and "transformers" in sys.modules,
                    "alembic.migration" in sys.modules,  # what opening the storage imports
                    gc.get_freeze_count(),
                ])
            """
        )
    )
    script = textwrap.dedent(
        f"""
        import json, multiprocessing, multiprocessing.forkserver, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from hpo.backends.optuna.processes import start_fork_server
        start_fork_server(1, "gpt2")
        server = multiprocessing.forkserver._forkserver._forkserver_pid
        import probe
        context = multiprocessing.get_context("forkserver")
        queue = context.Queue()
        child = context.Process(target=probe.probe, args=(queue,))
        child.start()
        ppid, child_holds_imports, child_holds_alembic, frozen = queue.get(timeout=600)
        child.join()
        print(json.dumps({{
            "forked_by_server": ppid == server,
            "child_holds_imports": child_holds_imports,
            "child_holds_alembic": child_holds_alembic,
            # torch and transformers are some 400,000 objects; a fresh interpreter has none
            # frozen, so the child's collections skip what the server imported.
            "child_heap_frozen": frozen > 100_000,
            "parent_imported_torch": "torch" in sys.modules,
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "forked_by_server": True,
        "child_holds_imports": True,
        "child_holds_alembic": True,
        "child_heap_frozen": True,
        "parent_imported_torch": False,
    }


def test_the_watch_wakes_when_a_worker_exits_not_at_the_end_of_its_interval():
    # The supervisor sleeps in `wait_for_exit` between looks at its workers; a worker's exit
    # ends the sleep, so `hpo run` ends with its last worker. The interval here is an hour: a
    # wait that only slept would still be sleeping when the thread is given up on, long
    # before the hour is over (this checks that it returned, not how fast).
    import multiprocessing
    import threading

    from hpo.backends.optuna.processes import LocalWorkers

    workers = LocalWorkers.__new__(LocalWorkers)  # the process table only: no study needed
    workers.processes, workers.orphans, workers.exit_codes = {}, {}, {}
    workers.processes[0] = multiprocessing.get_context("spawn").Process(target=int)
    process = workers.processes[0]
    process.start()
    waiter = threading.Thread(target=workers.wait_for_exit, args=(3600,), daemon=True)
    waiter.start()
    waiter.join(300)
    assert not waiter.is_alive(), "wait_for_exit slept on after its worker exited"
    assert workers.collect_exits() == {0: (process.pid, 0)}
