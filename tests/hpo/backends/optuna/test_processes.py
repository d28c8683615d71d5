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
    # `hpo run` starts the fork server once the file's shape is checked (issue 9). A process
    # forked from it already holds torch and transformers, although the process that started
    # the server has imported neither: the server imported them, once, for every worker.
    (tmp_path / "probe.py").write_text(
        textwrap.dedent(
            """
            import os, sys

            def probe(queue):
                queue.put([os.getppid(), "torch" in sys.modules, "transformers" in sys.modules])
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
        ppid, torch_in_child, transformers_in_child = queue.get(timeout=600)
        child.join()
        print(json.dumps({{
            "forked_by_server": ppid == server,
            "child_holds_imports": torch_in_child and transformers_in_child,
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
        "parent_imported_torch": False,
    }
