"""trainer/step_plan.py as tables: a step's facts -> the actions the loop carries out, in order.

The loop itself (trainer/after_step.py, Trainer._finish) is covered end to end by test_loop,
test_checkpoint, test_callbacks and the Optuna / Ray tests; these tables pin the rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from trainer.step_plan import (
    Action,
    EvaluatedFacts,
    FinishFacts,
    StepFacts,
    plan_finish,
    plan_step,
    plan_step_end,
    save_vote,
)

EVALUATE, REPORT, SAVE = Action.EVALUATE, Action.REPORT, Action.SAVE
REPORT_WITH_CHECKPOINT = Action.REPORT_WITH_CHECKPOINT

STEPS = StepFacts(
    step=10,
    max_steps=100,
    eval_strategy="steps",
    save_strategy="steps",
    eval_steps=5,
    save_steps=10,
)
EPOCHS = replace(STEPS, eval_strategy="epoch", save_strategy="epoch", epoch_end=True)


@pytest.mark.parametrize(
    ("facts", "actions", "save_wanted"),
    [
        pytest.param(STEPS, (EVALUATE, REPORT), True, id="on both grids"),
        pytest.param(replace(STEPS, step=5), (EVALUATE, REPORT), False, id="on the eval grid"),
        pytest.param(replace(STEPS, step=7), (), False, id="off the grids"),
        pytest.param(
            replace(STEPS, step=7, max_steps=7), (EVALUATE, REPORT), True, id="off-grid last step"
        ),
        pytest.param(replace(STEPS, step=12, max_steps=7), (EVALUATE, REPORT), True, id="past"),
        pytest.param(replace(STEPS, eval_delay=11), (), True, id="before eval_delay"),
        pytest.param(replace(STEPS, eval_delay=10), (EVALUATE, REPORT), True, id="at eval_delay"),
        pytest.param(
            replace(STEPS, step=7, max_steps=7, eval_delay=8),
            (),
            True,
            id="last step before eval_delay",
        ),
        pytest.param(EPOCHS, (EVALUATE, REPORT), True, id="epoch strategies at an epoch end"),
        pytest.param(replace(EPOCHS, epoch_end=False), (), False, id="epoch strategies mid-epoch"),
        pytest.param(replace(STEPS, epoch_end=True), (), False, id="steps strategies, epoch end"),
        pytest.param(
            replace(EPOCHS, eval_delay=1000),
            (EVALUATE, REPORT),
            True,
            id="eval_delay is the steps grid's",
        ),
        pytest.param(
            replace(STEPS, step=7, evaluate_requested=True, save_requested=True),
            (EVALUATE, REPORT),
            True,
            id="a callback asks for both",
        ),
        pytest.param(
            replace(STEPS, eval_strategy="no", evaluate_requested=True),
            (EVALUATE, REPORT),
            True,
            id="a callback asks, strategy no",
        ),
        pytest.param(
            replace(STEPS, last_eval_step=10), (), True, id="already evaluated at this step"
        ),
        pytest.param(
            replace(EPOCHS, last_eval_step=10, evaluate_requested=True),
            (),
            True,
            id="epoch end after the step's evaluation",
        ),
        pytest.param(
            replace(STEPS, checkpoint_in_report=True), (EVALUATE,), True, id="Ray: no report yet"
        ),
        pytest.param(replace(STEPS, save_strategy="best"), (EVALUATE, REPORT), False, id="best"),
        pytest.param(replace(STEPS, save_strategy="no"), (EVALUATE, REPORT), False, id="no saves"),
    ],
)
def test_plan_step(facts, actions, save_wanted):
    start = plan_step(facts)
    assert start.actions == actions
    assert start.evaluate == (EVALUATE in actions)
    assert start.save_wanted is save_wanted


EVALUATED = EvaluatedFacts(
    step=10, evaluated=True, save_wanted=True, save_requested=True, save_strategy="steps"
)
RAY = replace(EVALUATED, checkpoint_in_report=True)
BEST = replace(EVALUATED, save_wanted=False, save_requested=False, save_strategy="best")


@pytest.mark.parametrize(
    ("facts", "actions", "declined"),
    [
        pytest.param(EVALUATED, (SAVE,), False, id="the wanted save"),
        pytest.param(
            replace(EVALUATED, save_requested=False), (), True, id="on_evaluate cancels it"
        ),
        pytest.param(
            replace(EVALUATED, save_wanted=False), (SAVE,), False, id="on_evaluate asks for one"
        ),
        pytest.param(
            replace(EVALUATED, stopped_by_reporter=True), (), True, id="pruned: saves nothing"
        ),
        pytest.param(
            replace(EVALUATED, last_save_step=10), (), False, id="already saved at this step"
        ),
        pytest.param(
            replace(EVALUATED, evaluated=False), (SAVE,), False, id="a save without evaluation"
        ),
        pytest.param(replace(BEST, improved=True), (SAVE,), False, id="best: improved"),
        pytest.param(BEST, (), False, id="best: not improved"),
        pytest.param(
            replace(BEST, improved=True, evaluated=False),
            (),
            False,
            id="best: no evaluation, no improvement",
        ),
        pytest.param(
            replace(BEST, improved=True, stopped_by_reporter=True), (), False, id="best: pruned"
        ),
        pytest.param(
            replace(EVALUATED, save_strategy="best", save_wanted=False, save_requested=False),
            (),
            False,
            id="best strategy, no request",
        ),
        pytest.param(RAY, (SAVE, REPORT_WITH_CHECKPOINT), False, id="Ray: save, then report"),
        pytest.param(
            replace(RAY, save_wanted=False, save_requested=False),
            (SAVE, REPORT_WITH_CHECKPOINT),
            False,
            id="Ray: every evaluation writes its checkpoint",
        ),
        pytest.param(
            replace(RAY, save_requested=False),
            (SAVE, REPORT_WITH_CHECKPOINT),
            True,
            id="Ray: cancelled save still written for the report, and recorded declined",
        ),
        pytest.param(
            replace(RAY, last_save_step=10),
            (REPORT_WITH_CHECKPOINT,),
            False,
            id="Ray: the step's checkpoint exists",
        ),
        pytest.param(
            replace(RAY, evaluated=False), (SAVE,), False, id="Ray: no evaluation, no report"
        ),
        pytest.param(replace(EVALUATED, rank0_save=False), (), True, id="rank 0 declines"),
        pytest.param(
            replace(EVALUATED, save_wanted=False, save_requested=False, rank0_save=True),
            (SAVE,),
            False,
            id="rank 0 saves",
        ),
    ],
)
def test_plan_step_end(facts, actions, declined):
    end = plan_step_end(facts)
    assert end.actions == actions
    assert end.declined is declined


@pytest.mark.parametrize(
    ("facts", "vote"),
    [
        (EVALUATED, True),
        (replace(EVALUATED, save_requested=False), False),
        (replace(EVALUATED, stopped_by_reporter=True), False),
        (replace(BEST, improved=True), True),
        (BEST, False),
        # The vote is this rank's own: rank 0's answer is given back, not voted on again.
        (replace(EVALUATED, rank0_save=False), True),
    ],
)
def test_save_vote(facts, vote):
    assert save_vote(facts) is vote


def whole_step(facts, *, improved=False, on_evaluate_save=None, pruned=False):
    """Both phases as the loop runs them, given what the evaluation, its callbacks' on_evaluate
    (None: leaves the save flag alone) and the search's verdict turn out to be."""
    start = plan_step(facts)
    requested = start.save_wanted if on_evaluate_save is None else on_evaluate_save
    end = plan_step_end(
        EvaluatedFacts(
            step=facts.step,
            evaluated=start.evaluate,
            save_wanted=start.save_wanted,
            save_requested=requested if start.evaluate else start.save_wanted,
            improved=improved and start.evaluate,
            save_strategy=facts.save_strategy,
            stopped_by_reporter=pruned and REPORT in start.actions,
            checkpoint_in_report=facts.checkpoint_in_report,
        )
    )
    return start.actions + end.actions, end.declined


LAST = replace(STEPS, step=7, max_steps=7)


@pytest.mark.parametrize(
    ("facts", "outcome", "actions", "declined"),
    [
        pytest.param(STEPS, {}, (EVALUATE, REPORT, SAVE), False, id="Optuna: report, then save"),
        pytest.param(
            replace(STEPS, checkpoint_in_report=True),
            {},
            (EVALUATE, SAVE, REPORT_WITH_CHECKPOINT),
            False,
            id="Ray: save, then report with it",
        ),
        pytest.param(STEPS, {"pruned": True}, (EVALUATE, REPORT), True, id="pruned: no save"),
        pytest.param(
            LAST,
            {"on_evaluate_save": False},
            (EVALUATE, REPORT),
            True,
            id="last step: on_evaluate cancels the save (SkipUnkeptLastCheckpoint)",
        ),
        pytest.param(
            replace(STEPS, step=5, save_strategy="best"),
            {"improved": True},
            (EVALUATE, REPORT, SAVE),
            False,
            id="best: an improving evaluation saves",
        ),
        pytest.param(
            replace(STEPS, step=5, save_strategy="best"),
            {"improved": True, "pruned": True},
            (EVALUATE, REPORT),
            False,
            id="best: improved but pruned",
        ),
        pytest.param(
            replace(STEPS, step=20, eval_steps=7),
            {},
            (SAVE,),
            False,
            id="a save without an evaluation",
        ),
        pytest.param(
            replace(EPOCHS, last_eval_step=10),
            {},
            (SAVE,),
            False,
            id="epoch end: evaluated already at the step",
        ),
    ],
)
def test_whole_step(facts, outcome, actions, declined):
    assert whole_step(facts, **outcome) == (actions, declined)


FINISHED = FinishFacts(step=7, eval_strategy="steps", save_strategy="steps")


@pytest.mark.parametrize(
    ("facts", "actions"),
    [
        pytest.param(FINISHED, (EVALUATE, SAVE), id="neither at the last step"),
        pytest.param(replace(FINISHED, last_eval_step=7, last_save_step=7), (), id="both done"),
        pytest.param(
            replace(FINISHED, last_eval_step=7, save_declined_step=7),
            (),
            id="the declined save is not written",
        ),
        pytest.param(
            replace(FINISHED, save_declined_step=5),
            (EVALUATE, SAVE),
            id="a declined save of an earlier step",
        ),
        pytest.param(replace(FINISHED, stopped_by_reporter=True), (), id="pruned: nothing"),
        pytest.param(
            replace(FINISHED, eval_strategy="epoch", save_strategy="epoch"),
            (EVALUATE, SAVE),
            id="epoch strategies",
        ),
        pytest.param(
            replace(FINISHED, save_strategy="best"), (EVALUATE,), id="best: no final save"
        ),
        pytest.param(
            replace(FINISHED, eval_strategy="no", save_strategy="no"), (), id="strategies no"
        ),
        pytest.param(
            replace(FINISHED, eval_strategy="no", last_save_step=7), (), id="saved, no evals"
        ),
    ],
)
def test_plan_finish(facts, actions):
    assert plan_finish(facts) == actions


def test_the_plan_imports_only_the_standard_library():
    import ast

    import trainer.step_plan as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "dataclasses", "enum"}
