"""hpo.backends.placement: workers on GPUs (fake device lists) or CPU threads; the study keys;
a real run whose workers get their CUDA_VISIBLE_DEVICES before torch looks at CUDA."""

from __future__ import annotations

import optuna
import pytest
from helpers.cli_runner import snapshot
from helpers.study_files import the_problem, tiny_gpt2_config, tiny_spec, write_study
from optuna.trial import TrialState

from hpo import backends
from hpo.attrs import DEVICES_ATTR, WORKER_ATTR
from hpo.backends.optuna.supervisor import OptunaRun
from hpo.backends.placement import (
    PlacementError,
    place,
    place_study,
    ray_trials_per_gpu,
    visible_gpus,
)
from hpo.spec import BudgetSpec, ModelSpec, PlacementSpec
from hpo.study import load


def gpus_of(placement) -> list[tuple[str, ...]]:
    return [slot.gpus for slot in placement.slots]


def test_auto_gives_one_worker_per_visible_gpu():
    placement = place(workers=None, gpus=["0", "1", "2", "3"], cores=16)
    assert gpus_of(placement) == [("0",), ("1",), ("2",), ("3",)]
    assert [s.cuda_visible_devices() for s in placement.slots] == ["0", "1", "2", "3"]
    assert [s.threads for s in placement.slots] == [4, 4, 4, 4]
    assert placement.describe() == "4 worker(s) on GPU 0, GPU 1, GPU 2, GPU 3"


def test_devices_list_chooses_among_the_visible_gpus_by_index():
    # CUDA_VISIBLE_DEVICES=4,5,6 on the machine: devices index into what is visible.
    placement = place(workers=None, gpus=["4", "5", "6"], cores=8, devices=[0, 2])
    assert gpus_of(placement) == [("4",), ("6",)]


def test_trials_per_device_packs_several_workers_on_one_gpu():
    placement = place(workers=None, gpus=["0", "1"], cores=8, trials_per_device=3)
    assert gpus_of(placement) == [("0",)] * 3 + [("1",)] * 3
    assert placement.describe() == "6 worker(s) on GPU 0 (x3), GPU 1 (x3)"


def test_explicit_workers_are_placed_round_robin_on_the_gpus():
    placement = place(workers=3, gpus=["0", "1"], cores=6)
    assert gpus_of(placement) == [("0",), ("1",), ("0",)]


def test_a_multi_process_trial_takes_one_gpu_per_rank():
    placement = place(workers=None, gpus=["0", "1", "2", "3", "4"], cores=10, trial_processes=2)
    # Two trials of two ranks; the fifth GPU cannot hold a whole trial.
    assert gpus_of(placement) == [("0", "1"), ("2", "3")]
    slot = placement.slots[1]
    assert [slot.cuda_visible_devices(rank) for rank in (0, 1)] == ["2", "3"]
    assert "x 2 process(es)" in placement.describe()
    with pytest.raises(PlacementError, match="trial_processes: 4 needs 4 GPUs"):
        place(workers=None, gpus=["0", "1"], cores=4, trial_processes=4)


def test_without_gpus_the_cores_are_split_as_before():
    assert place(workers=None, gpus=[], cores=8).workers == 1  # auto on CPU: one worker
    placement = place(workers=3, gpus=[], cores=8)
    assert [s.threads for s in placement.slots] == [3, 3, 2]
    assert [s.cuda_visible_devices() for s in placement.slots] == [None] * 3  # env untouched
    assert placement.describe() == "3 worker(s) on CPU x 2-3 thread(s)"
    # trial_processes share the cores too: 2 workers x 2 ranks on 8 cores = 2 threads each.
    assert [s.threads for s in place(workers=2, gpus=[], cores=8, trial_processes=2).slots] == [
        2,
        2,
    ]


def test_devices_empty_list_hides_the_gpus():
    placement = place(workers=2, gpus=["0", "1"], cores=4, devices=[])
    assert [s.cuda_visible_devices() for s in placement.slots] == ["", ""]
    assert placement.describe() == "2 worker(s) on CPU x 2 thread(s)"


def test_devices_that_are_not_there_are_one_clear_error():
    with pytest.raises(PlacementError, match=r"devices: \[0, 3\] names GPU 3 but 2 GPU"):
        place(workers=None, gpus=["0", "1"], cores=4, devices=[0, 3])
    with pytest.raises(PlacementError, match="no GPU is visible") as caught:
        place(workers=None, gpus=[], cores=4, devices=[0])
    assert caught.value.exit_code == 2


def test_ray_fractional_gpus_in_the_header():
    assert ray_trials_per_gpu(0.5) == "2 trial(s) per GPU (gpu: 0.5 each)"
    assert ray_trials_per_gpu(0.25).startswith("4 trial(s) per GPU")
    assert ray_trials_per_gpu(0) is None


def test_this_machine_has_no_gpu_and_is_not_initialised_by_counting():
    import torch

    assert visible_gpus() == []
    assert not torch.cuda.is_initialized()


# ---------------------------------------------------------------------------------------------
# The study file's keys


def test_study_keys_reach_the_spec(tmp_path):
    spec = load(write_study(tmp_path, {"workers": "auto", "trials_per_device": 2}))
    assert spec.placement == PlacementSpec(auto=True, trials_per_device=2)
    spec = load(write_study(tmp_path, {"devices": [0, 1], "trial_processes": 2}))
    assert spec.placement == PlacementSpec(auto=True, devices=(0, 1), trial_processes=2)
    spec = load(write_study(tmp_path, {"workers": 3, "devices": [1]}))
    assert spec.workers == 3 and not spec.placement.auto
    # --workers on the command line wins over `auto`.
    spec = load(write_study(tmp_path, {"workers": "auto"}), workers=2)
    assert spec.workers == 2 and not spec.placement.auto
    assert load(write_study(tmp_path)).placement == PlacementSpec()


def test_ray_with_auto_workers_lets_the_cluster_decide_concurrency(tmp_path):
    spec = load(write_study(tmp_path, {"backend": "ray", "workers": "auto"}))
    assert spec.ray["max_concurrent_trials"] is None
    spec = load(
        write_study(tmp_path, {"backend": "ray", "ray": {"resources_per_trial": {"gpu": 0.5}}})
    )
    assert spec.ray["resources_per_trial"]["gpu"] == 0.5


def test_multi_process_trials_are_refused_on_ray(tmp_path):
    problem = the_problem(tmp_path, {"backend": "ray", "trial_processes": 2}, "trial_processes")
    assert "only on `backend: optuna`" in problem


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"workers": "all"}, "workers", "or auto"),
        ({"devices": "0,1"}, "devices", "a list of GPU indices"),
        ({"devices": [0, -1]}, "devices", "an integer >= 0"),
        ({"trials_per_device": 0}, "trials_per_device", "an integer >= 1"),
        ({"trial_processes": 1.5}, "trial_processes", "an integer >= 1"),
    ],
)
def test_bad_placement_keys(tmp_path, changes, path, expected):
    assert expected in the_problem(tmp_path, changes, path)


# ---------------------------------------------------------------------------------------------
# A real run placed on fake GPUs: each worker process gets its own CUDA_VISIBLE_DEVICES


@pytest.mark.slow
def test_workers_get_their_gpus_in_their_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # Each worker's first trial waits at a barrier until both are in a trial, so both train.
    barrier = {"barrier_dir": str(tmp_path / "barrier"), "parties": 2}
    model = ModelSpec(
        task="causal-lm",
        factory="helpers.barrier_models:gpt2_at_barrier",
        config={**tiny_gpt2_config(n_positions=32), **barrier},
    )
    spec = tiny_spec(
        tmp_path,
        model=model,
        budget=BudgetSpec(n_trials=4),
        placement=PlacementSpec(auto=True, trials_per_device=1),
        training={"max_steps": 4, "eval_steps": 4, "use_cpu": True},
    )
    # This machine has no GPU: the placement gets a fake list; torch then finds no CUDA
    # device behind "7" or "9" and trains on CPU, but the worker's environment is what a
    # GPU machine's would be.
    placement = place_study(spec, gpus=["7", "9"], cores=2)
    run = OptunaRun(spec, placement=placement)
    assert run.spec.workers == 2  # `auto` became one worker per GPU
    assert run.run() == 0
    assert "2 worker(s) on GPU 7, GPU 9" in capsys.readouterr().out
    study = optuna.load_study(study_name=spec.name, storage=spec.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    by_worker: dict[str, set[str]] = {}
    for trial in trials:
        by_worker.setdefault(trial.user_attrs[WORKER_ATTR], set()).add(
            trial.user_attrs[DEVICES_ATTR]
        )
    # Two worker processes, each saw exactly one GPU, and they saw different ones.
    assert len(by_worker) == 2, by_worker
    assert sorted(d for devices in by_worker.values() for d in devices) == ["7", "9"]


def test_placement_error_stops_the_run_before_anything_starts(tmp_path):
    # Through the backend's entry point (what `hpo run` calls), which opens the storage and
    # starts workers once placed: a refused placement leaves the folder as it was (no
    # database, no output folder), not only an OptunaRun never constructed.
    spec = tiny_spec(tmp_path, placement=PlacementSpec(devices=(0,)))
    before = snapshot(tmp_path)
    with pytest.raises(PlacementError):
        backends.get("optuna").run(spec)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "tiny.db").exists()
    with pytest.raises(PlacementError):
        OptunaRun(spec)
