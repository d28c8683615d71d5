"""Search backends: `optuna` (worker processes sharing one SQL storage) and `ray` (Ray Tune).

`hpo.backends.optuna.supervisor` picks one by the study's `backend` key; each is imported only when used.
"""

from __future__ import annotations
