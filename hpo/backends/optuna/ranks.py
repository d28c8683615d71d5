"""An Optuna trial trained by `trial_processes: N` processes: this worker is rank 0, and
`hpo.backends.trial_ranks` starts, meets and watches the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.attrs import RANKS_STOPPED_AT_ATTR, WORLD_SIZE_ATTR
from hpo.backends.objective import TrialContext, train_trial
from hpo.backends.trial_ranks import TrialRanks

if TYPE_CHECKING:
    import optuna

    from hpo.backends.optuna.recorder import StorageRecorder


def train_on_ranks(
    ctx: TrialContext,
    trial: optuna.Trial,
    recorder: StorageRecorder,
    *,
    callbacks: list[Any],
    output_dir: str,
    resume: str | None,
) -> Any:
    """The trial under torch.distributed: this process is rank 0 (hpo/backends/trial_ranks.py)."""
    import optuna

    world_size = ctx.spec.placement.trial_processes
    trial.set_user_attr(WORLD_SIZE_ATTR, world_size)
    ranks = TrialRanks(ctx.spec, world_size)
    clean = False
    try:
        ranks.start({"params": dict(trial.params), "output_dir": output_dir, "resume": resume})
        output = train_trial(
            ctx, trial, output_dir=output_dir, resume_from_checkpoint=resume, callbacks=callbacks
        )
        clean = True
        return output
    except optuna.TrialPruned:
        clean = True  # a prune every rank obeyed: they stop at the same step
        raise
    except Exception as error:
        failed = ranks.failure()
        if failed is not None:
            raise failed from error
        raise
    finally:
        ranks.close(clean=clean)
        if clean:
            trial.set_user_attr(RANKS_STOPPED_AT_ATTR, [recorder.last_step, *ranks.stopped_at()])
