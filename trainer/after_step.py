"""What the loop does after an optimizer step (and at an epoch's end): its log, and the
evaluation, reports to the trial's search and checkpoint that trainer/step_plan.py decides, in
that plan's order. `AfterStep` is mixed into `Trainer`, whose attributes it reads. Of the
evaluation, report and save this module decides nothing: it gathers the facts, carries the plan
out (callbacks, the reporter, torch.distributed, the checkpoint files) and hands the facts that
arrive mid-step (the evaluation, the search's verdict, rank 0's vote) to the plan's next phase.
The log's timing (`_should_log`) is its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trainer import checkpoint as ckpt
from trainer.resume_checks import callback_states
from trainer.step_plan import Action, EvaluatedFacts, StepFacts, plan_step, plan_step_end, save_vote

if TYPE_CHECKING:
    import torch

    from trainer.run import Run


if TYPE_CHECKING:  # a mixin of Trainer: checked against the attributes TrainerBase gives it
    from trainer.base import TrainerBase as _TrainerAttributes
else:
    _TrainerAttributes = object


class AfterStep(_TrainerAttributes):
    """The log, evaluation, report and save of a step, as `Trainer` carries them out."""

    def _should_log(self, step: int) -> bool:
        args = self.args
        if self.control.should_log or (args.logging_first_step and step == 1):
            return True
        every = self.state.logging_steps
        return args.logging_strategy == "steps" and bool(every) and step % every == 0

    def _log_training(
        self,
        run: Run,
        loss_total: torch.Tensor,
        logged_before: float,
        steps: int,
        grad_norm: torch.Tensor | None,
    ) -> float:
        """Logs the mean step loss since the last log; returns the running total it read."""
        total = loss_total.item()
        logs: dict[str, float] = {"loss": round((total - logged_before) / max(steps, 1), 6)}
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)
        logs["learning_rate"] = run.last_lr
        self.log(logs)
        return total

    def _after_step(self, run: Run, epoch_end: bool) -> None:
        args, state, control = self.args, self.state, self.control
        step = state.global_step
        reporter = run.plan.reporter
        in_report = reporter is not None and reporter.needs_checkpoint
        start = plan_step(
            StepFacts(
                step=step,
                max_steps=run.max_steps,
                epoch_end=epoch_end,
                eval_strategy=args.eval_strategy,
                save_strategy=args.save_strategy,
                eval_steps=state.eval_steps,
                save_steps=state.save_steps,
                eval_delay=args.eval_delay,
                evaluate_requested=control.should_evaluate,
                save_requested=control.should_save,
                last_eval_step=run.last_eval_step,
                checkpoint_in_report=in_report,
            )
        )
        # The wanted save is in the flag during the evaluation, as in Transformers: a
        # callback's on_evaluate may cancel it (control.should_save = False) or ask for one.
        control.should_save = start.save_wanted
        control.should_evaluate = control.should_log = False
        improved = False
        for action in start.actions:
            if action is Action.EVALUATE:
                improved = self._evaluate_in_loop(run)
            elif action is Action.REPORT:
                self._report(run, step, checkpoint=None)
        facts = EvaluatedFacts(
            step=step,
            evaluated=start.evaluate,
            save_wanted=start.save_wanted,
            save_requested=control.should_save,
            improved=improved,
            save_strategy=args.save_strategy,
            stopped_by_reporter=run.stopped_by_reporter,
            checkpoint_in_report=in_report,
            last_save_step=run.last_save_step,
        )
        if start.evaluate and self._ranks is not None:  # rank 0's callbacks decide for all
            facts = replace(facts, rank0_save=self._ranks.broadcast_flag(save_vote(facts)))
        control.should_save = False
        end = plan_step_end(facts)
        if end.declined:
            run.save_declined_step = step  # so that _finish does not write it after all
        for action in end.actions:
            if action is Action.SAVE:
                self._save(run)
            elif action is Action.REPORT_WITH_CHECKPOINT:  # Ray Tune
                self._report(run, step, checkpoint=state.last_checkpoint)

    def _report(self, run: Run, step: int, checkpoint: str | None) -> None:
        """Reports the evaluation to the trial's search; stops the run if it says so."""
        reporter = run.plan.reporter
        if reporter is not None:
            reporter.report(run.last_metrics, step, checkpoint, final=step >= self.state.max_steps)
            if reporter.should_stop():
                run.stopped_by_reporter = True
                self.control.should_training_stop = True
        if self._ranks is not None:
            # Rank 0 alone asks the search whether to prune; every rank stops at this step
            # (and, stopping, none of them saves).
            if self._ranks.broadcast_flag(run.stopped_by_reporter):
                run.stopped_by_reporter = True
                self.control.should_training_stop = True

    # --- what Transformers' JIT checkpoint callback calls (enable_jit_checkpoint) ---
    # Not hooks: a subclass that overrides them is refused (trainer/hooks.py), since the loop's
    # own saves never call them.
    _current_run: Run | None = None

    def _get_output_dir(self, trial: Any = None) -> str:
        return self.args.output_dir

    def _save_checkpoint(self, model: Any, trial: Any = None) -> None:
        if self._current_run is None:
            raise RuntimeError("_save_checkpoint() saves the run train() is running; none is")
        self._save(self._current_run)

    def _save(self, run: Run) -> str:
        args, ranks = self.args, self._ranks
        main = ranks is None or ranks.is_main
        if main:  # rank 0 writes the checkpoint
            self._record_hub_failures()  # so that this checkpoint's state lists them too
            self.state.stateful_callbacks = callback_states(
                self.callback_handler.callbacks, self.control
            )
            final = ckpt.save_checkpoint(
                args,
                self.state,
                model=run.model,
                optimizer=run.optimizer,
                scheduler=run.scheduler,
                scaler=run.scaler,
                processing_class=self.processing_class,
            )
        else:
            final = ranks.follow_checkpoint(args.output_dir, self.state)
        if ranks is not None:
            ranks.after_checkpoint(final)
        run.last_save_step = self.state.global_step
        if main and args.push_to_hub and args.hub_strategy != "end":
            # A snapshot now (hard links), the upload in the background.
            self.control = self._call("on_push_begin")
            self._hub().submit_checkpoint(args, final, self.state.global_step)
        self.control = self._call("on_save", checkpoint_dir=final)
        # After on_save: the older checkpoints go only once the new one is recorded, so a
        # process that dies (or a record that fails) in between still finds them. Only the
        # rank that writes checkpoints deletes them (two ranks rotating race each other).
        if main:
            ckpt.rotate(args.output_dir, args.save_total_limit, self.state.best_model_checkpoint)
        return final


__all__ = ["AfterStep"]
