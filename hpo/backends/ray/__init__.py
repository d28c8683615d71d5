"""The Ray Tune backend: a Tuner with Ray's schedulers, every trial mirrored into the study's storage."""
