"""Inside a job of dlrun's Optuna search: report each epoch's val loss to the job's trial and
ask the pruner whether to go on.

The job finds its trial through its own Hydra config: the study is the one in
`<hydra.sweep.dir>/optuna.journal`, and trial number N is job number N (the sweeper
launches each batch at its first trial's number). So any launcher that runs the task
function (in this process, joblib workers, submitit, Ray) reaches the same study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun.records import EpochRow

SWEEPER = "hydra_plugins.dlrun_optuna_sweeper.optuna_sweeper.OptunaSearch"


def trial_reporter(cfg: DictConfig) -> Callable[[EpochRow], str | None] | None:
    """For a trial of dlrun's Optuna search: a callback that reports an epoch and returns why
    the run should stop (pruned) or None; for any other job, None."""
    hydra = HydraConfig.get()
    if OmegaConf.select(hydra, "sweeper._target_") != SWEEPER:
        return None
    import optuna

    from dlrun.sweep.study import job_trial, make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = str(OmegaConf.select(cfg, "hparams_search.pruner", default="median"))
    trial = job_trial(Path(hydra.sweep.dir), hydra.job.num, make_pruner(name, cfg.trainer.epochs))

    def report(row: EpochRow) -> str | None:
        loss = row.loss("val")
        if loss is None or not math.isfinite(loss):
            return None  # a non-finite epoch ends the run as failed anyway
        trial.report(loss, row.epoch)
        if row.epoch < cfg.trainer.epochs and trial.should_prune():  # the last epoch saves nothing
            return (f"pruned by the {name} pruner after epoch {row.epoch} "
                    f"(val loss {loss:.4g}, worse than the earlier trials at that epoch)")
        return None

    return report
