"""The output, logging and Hub fields of TrainingArguments; their derived defaults and checks.

`OutputFields`, `LoggingFields` and `HubFields` are dataclass bases of `TrainingArguments`
(trainer/args.py), which places each group where Transformers lists it. Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from trainer.args_problems import Problems, enum_values, positive_steps, set_derived, whole_steps

LOG_LEVELS = ("passive", "debug", "info", "warning", "error", "critical")
INTERVAL_STRATEGIES = ("no", "steps", "epoch")
HUB_STRATEGIES = ("end", "every_save", "checkpoint", "all_checkpoints")


@dataclass
class OutputFields:
    # --- output ---
    output_dir: str | None = None
    run_name: str | None = None
    logging_dir: str | None = None
    report_to: None | str | list[str] = "none"  # this order: HfArgumentParser reads it so


@dataclass
class LoggingFields:
    # --- logging ---
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    disable_tqdm: bool | None = None
    include_num_input_tokens_seen: str | bool = "no"
    log_level: str = "passive"
    log_level_replica: str = "warning"  # one process: there are no replicas
    log_on_each_node: bool = True  # one process: one node
    project: str = "huggingface"  # the project name report_to integrations log under


@dataclass
class HubFields:
    # --- hub ---
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    hub_strategy: str = "every_save"
    hub_private_repo: bool | None = None


def normalise_output(args: Any) -> None:
    """The folder Transformers defaults to, and `report_to` as a list."""
    if args.output_dir is None:
        set_derived(args, "output_dir", "trainer_output")
    set_derived(args, "output_dir", os.path.expanduser(str(args.output_dir)))
    if isinstance(args.report_to, str):
        set_derived(args, "report_to", [] if args.report_to == "none" else [args.report_to])
    if args.report_to is None or args.report_to == ["none"]:
        set_derived(args, "report_to", [])
    if _in_kubeflow_trainjob() and "kubeflow" not in args.report_to:
        set_derived(args, "report_to", [*args.report_to, "kubeflow"])


def normalise_logging(args: Any) -> None:
    enum_values(args, "logging_strategy")
    whole_steps(args, "logging_steps")


def _in_kubeflow_trainjob() -> bool:
    """Transformers' test (is_kubeflow_available): inside a Kubeflow TrainJob its callback
    reports progress, unless DISABLE_KUBEFLOW_INTEGRATION is true."""
    if os.environ.get("DISABLE_KUBEFLOW_INTEGRATION", "FALSE").upper() == "TRUE":
        return False
    return os.environ.get("KUBEFLOW_TRAINER_SERVER_URL") is not None


def check_log_levels(args: Any, problems: Problems) -> None:
    for name in ("log_level", "log_level_replica"):
        problems.need(getattr(args, name) in LOG_LEVELS, name, f"one of {', '.join(LOG_LEVELS)}")


def check_logging_strategy(args: Any, problems: Problems) -> None:
    problems.need(
        args.logging_strategy in INTERVAL_STRATEGIES,
        "logging_strategy",
        f"one of {', '.join(INTERVAL_STRATEGIES)}",
    )


def check_hub_strategy(args: Any, problems: Problems) -> None:
    problems.need(
        args.hub_strategy in HUB_STRATEGIES, "hub_strategy", f"one of {', '.join(HUB_STRATEGIES)}"
    )


def check_logging_steps(args: Any, problems: Problems) -> None:
    problems.need(
        positive_steps(args.logging_steps),
        "logging_steps",
        "an integer >= 1 or a fraction in (0, 1)",
    )
