"""One trial trained by `trial_processes: N` processes under torch.distributed.

The worker that asked the trial is rank 0. For each trial it starts ranks 1..N-1 as fresh
processes with `torchrun`'s environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT, and one GPU each through CUDA_VISIBLE_DEVICES), meets them on a TCPStore, opens the
process group (gloo on CPU, NCCL on GPUs) and broadcasts the trial's params, output folder and
checkpoint to resume. Every rank then trains with our Trainer, which sees the process group
(trainer/distributed.py): rank 0 alone reports to the study and decides pruning, and the
trainer broadcasts its decisions, so every rank stops at the same step.

No rank waits forever:
- rank 0 fails (an error, a prune is not a failure): it kills the other ranks;
- another rank dies: rank 0's next collective fails (the connection closes) and the trial ends;
  a rank killed by a signal is a cut-short trial (FAIL, re-queued to resume from its last
  checkpoint, like a killed worker), a rank that raised an error fails the trial with it;
- rank 0's process dies: the other ranks get SIGKILL from the kernel (PR_SET_PDEATHSIG);
- a rank that hangs: every collective has the process group's timeout;
- Ctrl-C: the other ranks ignore it; rank 0 checkpoints and its stop reaches them as a
  broadcast flag.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hpo.errors import HpoError
from hpo.spec import StudySpec

# How long a collective may wait for a rank that neither answers nor dies.
COLLECTIVE_TIMEOUT_S = float(os.environ.get("HPO_COLLECTIVE_TIMEOUT_S", 600))
# How long the ranks may take to start (import torch, load the data) and meet.
START_TIMEOUT_S = 600.0
# How long the other ranks get to exit after a trial that ended cleanly.
EXIT_GRACE_S = 60.0
# The GPUs of this worker's ranks, one per rank, set by the worker process (processes.py).
RANK_DEVICES_ENV = "HPO_RANK_DEVICES"
_MASTER_ADDR = "127.0.0.1"  # the ranks of one trial run on one machine


class RankFailed(HpoError):
    """Another rank of the trial failed; `killed`: by a signal (the trial is resumed)."""

    def __init__(self, message: str, *, killed: bool):
        super().__init__(message)
        self.killed = killed


class TrialRanks:
    """Ranks 1..N-1 of one trial, and the process group they share with this process."""

    def __init__(self, spec: StudySpec, world_size: int):
        self.spec = spec
        self.world_size = world_size
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.killed_by_us = False
        self.store: Any = None
        self._folder = Path(tempfile.mkdtemp(prefix="hpo-ranks-"))

    # --- start ---
    def start(self, payload: dict[str, Any]) -> None:
        """Start the other ranks, open the process group, send them `payload`."""
        import torch.distributed as dist

        timeout = datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S)
        self.store = dist.TCPStore(
            _MASTER_ADDR,
            0,  # a free port, chosen by the OS
            self.world_size,
            is_master=True,
            wait_for_workers=False,
            timeout=datetime.timedelta(seconds=START_TIMEOUT_S),
        )
        spec_file = self._folder / "spec.pickle"
        spec_file.write_bytes(pickle.dumps(self.spec))
        for rank in range(1, self.world_size):
            self._start_rank(rank, spec_file)
        self._wait_until_ready()
        dist.init_process_group(
            _backend(), store=self.store, rank=0, world_size=self.world_size, timeout=timeout
        )
        dist.broadcast_object_list([payload], src=0)

    def _start_rank(self, rank: int, spec_file: Path) -> None:
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(self.world_size),
            "MASTER_ADDR": _MASTER_ADDR,
            "MASTER_PORT": str(self.store.port),
            "PYTHONUNBUFFERED": "1",
        }
        import torch

        threads = str(torch.get_num_threads())
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        devices = [d for d in os.environ.get(RANK_DEVICES_ENV, "").split(",") if d]
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = devices[rank % len(devices)]
        log = open(self._folder / f"rank{rank}.log", "wb")  # noqa: SIM115 - the child writes it
        self.processes[rank] = subprocess.Popen(
            [sys.executable, "-m", "hpo.backends.trial_ranks", str(spec_file)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def _wait_until_ready(self) -> None:
        keys = [f"ready{rank}" for rank in self.processes]
        end = time.monotonic() + START_TIMEOUT_S
        while not self.store.check(keys):
            self._raise_if_a_rank_exited()
            if time.monotonic() > end:
                raise HpoError(f"the trial's other ranks did not start in {START_TIMEOUT_S:.0f}s")
            time.sleep(0.2)

    # --- end ---
    def failure(self, wait_s: float = 10.0) -> RankFailed | None:
        """Why another rank ended the trial, if one did (waiting `wait_s` for it to exit)."""
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            try:
                self._raise_if_a_rank_exited(clean_ok=True)
            except RankFailed as failed:
                return failed
            if all(p.poll() is not None for p in self.processes.values()):
                return None
            time.sleep(0.1)
        return None

    def _raise_if_a_rank_exited(self, clean_ok: bool = False) -> None:
        for rank, process in self.processes.items():
            code = process.poll()
            if code is None or (code == 0 and clean_ok):
                continue
            if code < 0:
                name = signal.Signals(-code).name if -code in signal.valid_signals() else ""
                raise RankFailed(
                    f"rank {rank} of the trial was killed by signal {-code} ({name})", killed=True
                )
            raise RankFailed(
                f"rank {rank} of the trial failed: {self._last_line(rank)}", killed=False
            )

    def _last_line(self, rank: int) -> str:
        try:
            lines = (self._folder / f"rank{rank}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        lines = [line for line in lines if line.strip()]
        return lines[-1][:500] if lines else f"exit code {self.processes[rank].returncode}"

    def stopped_at(self) -> list[int | None]:
        """The step every rank stopped at (rank 0's from the trainer, the others' reported)."""
        steps: list[int | None] = []
        for rank in self.processes:
            key = f"stopped{rank}"
            steps.append(int(self.store.get(key)) if self.store.check([key]) else None)
        return steps

    def close(self, *, clean: bool) -> None:
        """Let the other ranks exit (after a clean end) or kill them; close the group."""
        import torch.distributed as dist

        if clean:
            end = time.monotonic() + EXIT_GRACE_S
            for process in self.processes.values():
                try:
                    process.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for process in self.processes.values():
            if process.poll() is None:
                self.killed_by_us = True
                process.kill()
                process.wait()
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(self._folder, ignore_errors=True)


def _backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


# --- ranks 1..N-1 --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when rank 0 (its parent) dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def rank_main(spec_file: str) -> int:
    """A rank > 0: meet rank 0, receive the trial, train it with the others, exit."""
    _die_with_parent()
    # Ctrl-C reaches every process of the terminal; only rank 0 acts on it (and tells us).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch
    import torch.distributed as dist

    from hpo.backends.objective import prepare, train_trial

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    spec: StudySpec = pickle.loads(Path(spec_file).read_bytes())
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    context = prepare(spec)  # the data cache rank 0 built; the model factory
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world_size,
        is_master=False,
        timeout=datetime.timedelta(seconds=START_TIMEOUT_S),
    )
    store.set(f"ready{rank}", "1")
    dist.init_process_group(
        _backend(),
        store=store,
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S),
    )
    if _backend() == "nccl":
        torch.cuda.set_device(0)  # CUDA_VISIBLE_DEVICES shows this rank one GPU
    payload: list[Any] = [None]
    dist.broadcast_object_list(payload, src=0)
    trial = payload[0]
    output = train_trial(
        context,
        trial["params"],  # a plain dict: no reporter here, rank 0 reports
        output_dir=trial["output_dir"],
        resume_from_checkpoint=trial["resume"],
    )
    store.set(f"stopped{rank}", str(output.global_step))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(rank_main(sys.argv[1]))
