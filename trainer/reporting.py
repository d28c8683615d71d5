"""report_to: the logging integrations of Transformers (TensorBoard, MLflow, Weights & Biases,
...) as callbacks, so that every log and evaluation row reaches them as it does from
`transformers.Trainer`.

Transformers' own callback classes are reused (`transformers.integrations`): they read only the
arguments, state and `logs` our CallbackHandler passes. A missing library fails when the
Trainer is built, with Transformers' message naming what to install.
"""

from __future__ import annotations

from typing import Any


def reporting_callbacks(report_to: list[str] | None) -> list[Any]:
    """One callback instance per integration named in report_to ([] for none)."""
    if not report_to:
        return []
    from transformers.integrations import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    names = get_available_reporting_integrations() if report_to == ["all"] else list(report_to)
    unknown = [name for name in names if name not in INTEGRATION_TO_CALLBACK]
    if unknown:
        raise ValueError(
            f"report_to={report_to!r}: {unknown} unknown; choose from "
            f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))} or 'none'"
        )
    callbacks = []
    for name in names:
        try:
            callbacks.append(INTEGRATION_TO_CALLBACK[name]())
        except (RuntimeError, ImportError) as error:
            # Transformers' message names the package (e.g. "pip install mlflow").
            raise RuntimeError(f"report_to={name!r}: {error}") from None
    return callbacks
