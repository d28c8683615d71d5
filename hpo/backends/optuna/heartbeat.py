"""A running trial's heartbeat: what tells the storage its worker is alive.

A trial whose heartbeat goes stale (the worker was killed, ran out of memory, lost its
machine) is failed and re-queued by whoever sweeps the storage (`hpo.storage.rdb`).
"""

from __future__ import annotations

import threading
from typing import Any


class Heartbeat:
    """Records the trial's heartbeat every interval in a thread, as study.optimize does."""

    def __init__(self, storage: Any, trial_id: int):
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval()
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # a transient storage error must not kill the trial
                pass
            if self._stop.wait(interval):
                return

    def __enter__(self) -> Heartbeat:
        if self._storage.get_heartbeat_interval() is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
