"""What the end of a step (or of an epoch, or of the run) does, and in which order: evaluate,
report to the trial's search, save. Pure functions of the facts the loop knows; the loop only
carries the actions out (trainer/after_step.py, `Trainer._finish`).

An evaluation's result and the search's verdict arrive in the middle of a step, so the plan has
two phases: `plan_step` (before the evaluation: whether to evaluate, whether to report before any
save, which save is wanted) and `plan_step_end` (after the evaluation and that report: save,
report with the checkpoint). The rules, as Transformers has them:

- The grid (DefaultFlowCallback's): `steps` strategies at multiples of eval_steps / save_steps
  and at the last step off the grid (evaluations from eval_delay on); `epoch` strategies at an
  epoch's end. A callback may ask for either (control.should_evaluate / should_save).
- The save is decided after the evaluation: a callback's on_evaluate may cancel it or ask for
  one, and `save_strategy="best"` saves after an evaluation that improved the best metric.
- A reporter that needs the checkpoint (Ray Tune) is reported to after the save, with it: every
  evaluation then writes one. Otherwise (Optuna) the report comes before the save, so that a
  trial the pruner stops there writes none (nothing loads a pruned trial's weights).
- Under torch.distributed rank 0's callbacks decide a save after an evaluation for every rank:
  rank 0's `save_vote` is broadcast and given back as `rank0_save`.
- A save the strategy wanted and that was not made (cancelled, or the run stopped) is recorded,
  so that the run's end does not write it after all.

No torch here: the plan is tested as a table (tests/trainer/test_step_plan.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    EVALUATE = "evaluate"
    # To the trial's search, before any save; its verdict may stop the run (and the save). Under
    # torch.distributed every rank takes it, those without a reporter included: they learn
    # rank 0's verdict there.
    REPORT = "report"
    SAVE = "save"
    REPORT_WITH_CHECKPOINT = "report with checkpoint"  # the checkpoint of this step


@dataclass(frozen=True)
class StepFacts:
    """What the loop knows when a step (or an epoch) has ended, before any evaluation."""

    step: int
    max_steps: int
    epoch_end: bool = False
    eval_strategy: str = "no"
    save_strategy: str = "no"
    eval_steps: int = 0  # the state's (a fraction of max_steps resolved)
    save_steps: int = 0
    eval_delay: float = 0
    evaluate_requested: bool = False  # control.should_evaluate, set by a callback
    save_requested: bool = False  # control.should_save, set by a callback
    last_eval_step: int = -1
    checkpoint_in_report: bool = False  # the reporter's needs_checkpoint (Ray Tune)


@dataclass(frozen=True)
class StepStart:
    actions: tuple[Action, ...]  # (), (EVALUATE,) or (EVALUATE, REPORT)
    save_wanted: bool  # the save asked for before the evaluation (its on_evaluate may cancel it)

    @property
    def evaluate(self) -> bool:
        return Action.EVALUATE in self.actions


def plan_step(facts: StepFacts) -> StepStart:
    """Whether to evaluate (and report before saving), and the save wanted before that."""
    if facts.epoch_end:
        evaluate = facts.eval_strategy == "epoch"
        save = facts.save_strategy == "epoch"
    else:
        last = facts.step >= facts.max_steps
        evaluate = (
            facts.eval_strategy == "steps"
            and (facts.step % facts.eval_steps == 0 or last)
            and facts.step >= facts.eval_delay
        )
        save = facts.save_strategy == "steps" and (facts.step % facts.save_steps == 0 or last)
    evaluate = (evaluate or facts.evaluate_requested) and facts.last_eval_step != facts.step
    actions: tuple[Action, ...] = ()
    if evaluate:
        actions = (
            (Action.EVALUATE,) if facts.checkpoint_in_report else (Action.EVALUATE, Action.REPORT)
        )
    return StepStart(actions, save or facts.save_requested)


@dataclass(frozen=True)
class EvaluatedFacts:
    """What the loop knows once `plan_step`'s actions are done."""

    step: int
    evaluated: bool
    save_wanted: bool  # StepStart.save_wanted
    save_requested: bool  # control.should_save after the evaluation's on_evaluate
    improved: bool = False  # the evaluation beat the best metric so far
    save_strategy: str = "no"
    stopped_by_reporter: bool = False  # the REPORT's verdict
    checkpoint_in_report: bool = False
    last_save_step: int = -1
    rank0_save: bool | None = None  # under torch.distributed, after an evaluation: rank 0's vote


def save_vote(facts: EvaluatedFacts) -> bool:
    """This process's answer to "save now?" (rank 0's is every rank's after an evaluation)."""
    best = facts.evaluated and facts.improved and facts.save_strategy == "best"
    return (facts.save_requested or best) and not facts.stopped_by_reporter


@dataclass(frozen=True)
class StepEnd:
    actions: tuple[Action, ...]  # (), (SAVE,), (SAVE, REPORT_WITH_CHECKPOINT), (REPORT_W...,)
    declined: bool  # the wanted save was not made: the run's end must not write it either


def plan_step_end(facts: EvaluatedFacts) -> StepEnd:
    """The save and the report that carries it, after the evaluation and its verdict."""
    save = facts.rank0_save if facts.rank0_save is not None else save_vote(facts)
    with_checkpoint = facts.evaluated and facts.checkpoint_in_report
    actions: tuple[Action, ...] = ()
    if (save or with_checkpoint) and facts.last_save_step != facts.step:
        actions = (Action.SAVE,)
    if with_checkpoint:
        actions = (*actions, Action.REPORT_WITH_CHECKPOINT)
    return StepEnd(actions, declined=facts.save_wanted and not save)


@dataclass(frozen=True)
class FinishFacts:
    """What the loop knows when it has ended (the last step's own plan already carried out)."""

    step: int
    eval_strategy: str = "no"
    save_strategy: str = "no"
    stopped_by_reporter: bool = False
    last_eval_step: int = -1
    last_save_step: int = -1
    save_declined_step: int = -1


def plan_finish(facts: FinishFacts) -> tuple[Action, ...]:
    """The run's last evaluation and save, unless its last step had them (or declined the save)
    or the search stopped it (a pruned run writes nothing more)."""
    if facts.stopped_by_reporter:
        return ()
    actions: tuple[Action, ...] = ()
    if facts.eval_strategy != "no" and facts.last_eval_step != facts.step:
        actions = (Action.EVALUATE,)
    unsaved = facts.step not in (facts.last_save_step, facts.save_declined_step)
    if facts.save_strategy in ("steps", "epoch") and unsaved:
        actions = (*actions, Action.SAVE)
    return actions


__all__ = [
    "Action",
    "EvaluatedFacts",
    "FinishFacts",
    "StepEnd",
    "StepFacts",
    "StepStart",
    "plan_finish",
    "plan_step",
    "plan_step_end",
    "save_vote",
]
