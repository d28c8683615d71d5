"""The `ray` section: cluster address, resources per trial, concurrency, storage, retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.study.keys import RAY_KEYS, RESOURCE_KEYS
from hpo.study.reader import Reader


def read_ray(reader: Reader, workers: int | None) -> dict[str, Any]:
    """The section with its defaults filled: {cpu: 1, gpu: 0} per trial, `workers` at once."""
    problems = reader.problems
    section = reader.mapping("ray")
    problems.unknown_keys(section, RAY_KEYS, "ray")
    address = reader.text(
        section.get("address"), "ray.address", "auto, host:port or ray://host:port"
    )
    resources_raw = reader.as_mapping(section.get("resources_per_trial"), "ray.resources_per_trial")
    problems.unknown_keys(resources_raw, RESOURCE_KEYS, "ray.resources_per_trial")
    resources: dict[str, float] = {"cpu": 1, "gpu": 0}
    for key in RESOURCE_KEYS:
        value = reader.number(
            resources_raw.get(key),
            f"ray.resources_per_trial.{key}",
            "a number >= 0",
            lambda v: v >= 0,
        )
        if value is not None:
            resources[key] = value
    storage_path = reader.text(section.get("storage_path"), "ray.storage_path", "a directory path")
    return {
        "address": address,
        "resources_per_trial": resources,
        "max_concurrent_trials": reader.integer(
            section.get("max_concurrent_trials"),
            "ray.max_concurrent_trials",
            minimum=1,
            default=workers,
        ),
        "storage_path": str(Path(storage_path).expanduser().absolute()) if storage_path else None,
        "max_failures": reader.integer(
            section.get("max_failures"), "ray.max_failures", minimum=0, default=0
        ),
    }
