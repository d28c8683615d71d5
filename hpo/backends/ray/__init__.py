"""The Ray Tune backend: a Tuner with Ray's schedulers, every trial mirrored into the study's storage.

- `tuner`: builds and runs the Tuner (restored on a rerun), locally or on a cluster;
- `trainable`: one Ray trial: the study's objective run inside a Tune session;
- `search`: random search, or TPE (OptunaSearch) told which trials the scheduler stopped;
- `mirror`: the Tune callback that writes each Ray trial into the Optuna storage;
- `ray_compat`: the few uses of Ray's internals, each checked by a test;
- `submit`: `hpo submit`, the study sent to a cluster through the Ray Jobs API.
`hpo.backends.get("ray")` runs it. Importing this package imports neither ray nor torch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # never runs: mypy checks the function `hpo.backends` names against Backend
    from hpo.backends import Backend
    from hpo.backends.ray import tuner
    from hpo.spec import StudySpec

    class _Checked:
        name = "ray"
        run = staticmethod(tuner.run_study)

        def join(self, spec: StudySpec) -> int: ...  # none: `hpo.backends` refuses it for ray

    _check: Backend = _Checked()
