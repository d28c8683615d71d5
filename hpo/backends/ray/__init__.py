"""The Ray Tune backend: a Tuner with Ray's schedulers, every trial mirrored into the study's storage.

- `tuner`: builds and runs the Tuner (restored on a rerun), locally or on a cluster;
- `mirror`: the Tune callback that writes each Ray trial into the Optuna storage;
- `submit`: `hpo submit`, the study sent to a cluster through the Ray Jobs API.
Importing this package imports neither ray nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import HpoError

if TYPE_CHECKING:
    from hpo.spec import StudySpec


class RayBackend:
    """`hpo.backends.Backend` for Ray Tune."""

    name = "ray"

    def run(self, spec: StudySpec, *, address: str | None = None) -> int:
        from hpo.backends.ray.tuner import run_study

        return run_study(spec, address=address)

    def join(self, spec: StudySpec) -> int:
        raise HpoError(
            f"backend: {spec.backend!r}: `hpo worker` joins Optuna studies; for Ray, add the "
            "machine to the Ray cluster (`ray start --address ...`) instead"
        )


backend = RayBackend()
