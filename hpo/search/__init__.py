"""The search itself: one space declaration -> Optuna distributions / Ray param spaces, and the
samplers, pruners and schedulers a study names."""
