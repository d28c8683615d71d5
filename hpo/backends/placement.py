"""Where each worker of one `hpo run` trains: which GPUs, how many torch threads.

`place()` is a pure function of the study's placement keys and the machine (its visible GPUs
and cores), so every rule is tested with fake device lists. `visible_gpus()` is the one place
that asks the machine, and it never initialises CUDA in the calling process (NVML only), so a
fork server forked later is still free to give each worker its own `CUDA_VISIBLE_DEVICES`.

The rules:
- GPUs chosen: `devices:` (indices into the visible GPUs; `devices: []` means CPU only), or
  every visible GPU. A trial of `trial_processes: N` takes N of them (one per rank).
- `workers: auto` (or `devices:` without `workers`): one worker per group of N GPUs, times
  `trials_per_device`. An explicit `workers: K` is placed round-robin on the groups.
- No GPU: `workers: auto` is one worker; the cores are split over every process of every
  worker, as before there were GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from hpo.errors import HpoError
from hpo.spec import StudySpec


class PlacementError(HpoError):
    """The study asks for devices this machine does not have (exit 2: fix the study file)."""

    exit_code = 2


@dataclass(frozen=True)
class WorkerSlot:
    """One worker: the GPUs its processes see (one per rank; empty on CPU) and its threads."""

    index: int
    gpus: tuple[str, ...]
    threads: int
    hide_gpus: bool = False  # `devices: []`: CPU only, even where GPUs are visible

    def cuda_visible_devices(self, rank: int = 0) -> str | None:
        """CUDA_VISIBLE_DEVICES for `rank` of this worker's trials; None: leave it alone."""
        if not self.gpus:
            return "" if self.hide_gpus else None
        return self.gpus[rank % len(self.gpus)]


@dataclass(frozen=True)
class Placement:
    slots: tuple[WorkerSlot, ...]
    trial_processes: int = 1

    @property
    def workers(self) -> int:
        return len(self.slots)

    def describe(self) -> str:
        """One line for `hpo run`'s header, e.g. "4 worker(s) on GPU 0 (x2), GPU 1 (x2)"."""
        ranks = f" x {self.trial_processes} process(es)" if self.trial_processes > 1 else ""
        if not any(slot.gpus for slot in self.slots):
            threads = sorted({slot.threads for slot in self.slots})
            shown = str(threads[0]) if len(threads) == 1 else f"{threads[0]}-{threads[-1]}"
            return f"{self.workers} worker(s){ranks} on CPU x {shown} thread(s)"
        per_group: dict[str, int] = {}
        for slot in self.slots:
            name = "GPU " + "+".join(slot.gpus)
            per_group[name] = per_group.get(name, 0) + 1
        groups = ", ".join(
            name + (f" (x{count})" if count > 1 else "") for name, count in per_group.items()
        )
        return f"{self.workers} worker(s){ranks} on {groups}"


def thread_split(cores: int, workers: int) -> list[int]:
    """Torch threads for each of `workers` processes so that together they use `cores`:
    the remainder goes to the first workers; never fewer than one thread each."""
    if workers < 1:
        raise ValueError(f"workers={workers}: must be >= 1")
    cores = max(1, cores)
    base, extra = divmod(cores, workers)
    return [max(1, base + (1 if index < extra else 0)) for index in range(workers)]


def place(
    *,
    workers: int | None,
    gpus: Sequence[str],
    cores: int,
    devices: Sequence[int] | None = None,
    trials_per_device: int = 1,
    trial_processes: int = 1,
) -> Placement:
    """The workers of one run. `workers=None` is `auto`; `gpus` are the visible GPUs' ids
    (what CUDA_VISIBLE_DEVICES names); `devices` indexes into them."""
    chosen = _chosen_gpus(gpus, devices)
    if not chosen:
        count = workers or 1
        split = thread_split(cores, count * trial_processes)
        hide = devices is not None and len(gpus) > 0  # `devices: []` on a machine with GPUs
        slots = tuple(
            WorkerSlot(index, (), split[index * trial_processes], hide_gpus=hide)
            for index in range(count)
        )
        return Placement(slots, trial_processes)
    if len(chosen) < trial_processes:
        raise PlacementError(
            f"trial_processes: {trial_processes} needs {trial_processes} GPUs for one trial "
            f"but {len(chosen)} are chosen ({', '.join(chosen)}); lower trial_processes or "
            "list more devices"
        )
    usable = len(chosen) - len(chosen) % trial_processes
    groups = [tuple(chosen[i : i + trial_processes]) for i in range(0, usable, trial_processes)]
    count = workers or len(groups) * trials_per_device
    split = thread_split(cores, count * trial_processes)
    slots = tuple(
        WorkerSlot(
            index,
            groups[(index // trials_per_device) % len(groups)],
            split[index * trial_processes],
        )
        for index in range(count)
    )
    return Placement(slots, trial_processes)


def _chosen_gpus(gpus: Sequence[str], devices: Sequence[int] | None) -> list[str]:
    if devices is None:
        return list(gpus)
    missing = [d for d in devices if d >= len(gpus)]
    if missing:
        seen = f"{len(gpus)} GPU(s) are visible" if gpus else "no GPU is visible"
        raise PlacementError(
            f"devices: {list(devices)} names GPU {missing[0]} but {seen}; list indices below "
            f"{len(gpus)}, or drop `devices:` to use every visible GPU"
            if gpus
            else f"devices: {list(devices)} but {seen} on this machine; drop `devices:` "
            "(or use devices: []) to train on CPU"
        )
    return [gpus[d] for d in dict.fromkeys(devices)]


def visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use, as CUDA_VISIBLE_DEVICES would name them.

    Counted through NVML (`torch.cuda.device_count()` before CUDA is initialised), which
    leaves CUDA uninitialised here; no torch with CUDA means no GPU.
    """
    import torch

    count = torch.cuda.device_count()
    if count <= 0:
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [item.strip() for item in listed.split(",") if item.strip()]
        return ids[:count]
    return [str(index) for index in range(count)]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def place_study(
    spec: StudySpec, *, gpus: Sequence[str] | None = None, cores: int | None = None
) -> Placement:
    """The placement of `spec` on this machine (or on the fake `gpus` / `cores` given)."""
    p = spec.placement
    return place(
        workers=None if p.auto else spec.workers,
        gpus=visible_gpus() if gpus is None else gpus,
        cores=available_cores() if cores is None else cores,
        devices=p.devices,
        trials_per_device=p.trials_per_device,
        trial_processes=p.trial_processes,
    )


def ray_trials_per_gpu(gpu: float) -> str | None:
    """How Ray packs trials of `resources_per_trial.gpu` (fractional GPUs), for the header."""
    if gpu <= 0:
        return None
    if gpu < 1:
        return f"{int(1 // gpu)} trial(s) per GPU (gpu: {gpu:g} each)"
    return f"{gpu:g} GPU(s) per trial"
