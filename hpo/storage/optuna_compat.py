"""Every use of Optuna's private API or of its database schema, in one place.

Optuna's public API has no way to do some things hpo needs (a study's id inside its storage,
a trial's id, counting trials in one SQL query, reading the schema directly for a fast
`hpo status`). Each such use is a small function here, and tests/hpo/storage/test_optuna_compat.py
checks every one against the installed optuna, so that a new optuna version that breaks one
fails that test loudly instead of failing a study at run time.

This module imports optuna only inside functions: `hpo status` imports it without loading optuna.
"""

from __future__ import annotations

# --- Optuna's schema (read by hpo.storage.reader with plain SQL) ------------------------------


# --- Optuna's private Python API --------------------------------------------------------------
