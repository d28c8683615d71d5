"""The Optuna backend: worker processes sharing one SQL storage, watched by a supervisor."""
