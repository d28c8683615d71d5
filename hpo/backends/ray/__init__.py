"""The Ray Tune backend: a Tuner with Ray's schedulers, every trial mirrored into the study's storage.

- `tuner`: builds and runs the Tuner (restored on a rerun), locally or on a cluster;
- `mirror`: the Tune callback that writes each Ray trial into the Optuna storage;
- `submit`: `hpo submit`, the study sent to a cluster through the Ray Jobs API.
Importing this package imports neither ray nor torch.
"""
