"""What a built Ray Tune scheduler was given, read back for the tests (Ray has no public
getters). tests/hpo/backends/ray/test_ray_compat.py checks each reader against the installed Ray,
so a release that renames one fails there by name, not in a test that uses it."""

from __future__ import annotations

from typing import Any


def scheduler_mode(scheduler: Any) -> str | None:
    """The mode ("min" | "max") a Tune scheduler was built with (Ray has no public getter)."""
    return scheduler._mode


def pbt_mutations(scheduler: Any) -> dict[str, Any]:
    """The `hyperparam_mutations` a PopulationBasedTraining scheduler was built with."""
    return scheduler._hyperparam_mutations


def pb2_bounds(scheduler: Any) -> dict[str, Any]:
    """The `hyperparam_bounds` a PB2 scheduler was built with."""
    return scheduler._hyperparam_bounds
