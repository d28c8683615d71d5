"""One module per section of the study file, each read into its part of the `StudySpec`.

`model`, `data`, `training`, `space`, `storage`, `ray`, `hub` (`push_best_to_hub`), `enqueue`
and `warm_start` read the key they are named for;
`run` reads `workers`, `objective` and `budget`; `search` reads `sampler`, `pruner` and
`scheduler` (the backend decides which apply), each through `components`, which checks one
component against the class it names; `metrics` reads `metrics`, `compute_metrics` and
`preprocess_logits_for_metrics`, and checks the objective against what they report. Entry
points are `read_*`; the `check_*` functions judge values that depend on another section (the
space's ends against the model and the training).
"""
