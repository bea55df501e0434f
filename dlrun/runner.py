"""One job, from a composed config to a finished run directory.

`run_job` is a short list of steps: validate the config, find this process's place among
data-parallel ranks (spawning them for `trainer.devices=N`), set up the device, then run
the job the config names, chosen from `JOBS`: a training run (`dlrun.recipe.TrainRun`:
setup -> train -> finish), a learning-rate range test, a cross-validation, or the
re-test of a trained run (`dlrun.retest`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun.build import build_components, load_data
from dlrun.config import validate
from dlrun.crossval import cross_validate
from dlrun.data import Dataset
from dlrun.errors import UserError
from dlrun.lr_find import find_lr
from dlrun.recipe import EpochHook, Job, TrainRun
from dlrun.retest import retest
from dlrun.train import distributed
from dlrun.train.accel import check_precision, configure_backend
from dlrun.train.threads import use_threads


def run_job(cfg: DictConfig, run_dir: Path | None = None, data: Dataset | None = None,
            overrides: list[str] | None = None, on_epoch: EpochHook | None = None) -> float:
    """Run one configured job into `run_dir` (Hydra's output directory by default).

    Returns what sweepers minimize: the validation loss of the weights the run ends
    with (the restored epoch's under early stopping; the mean over folds for
    `cv.folds=N`). `overrides` are what the user typed (remedies start from them);
    by default Hydra's. `data` replaces the configured dataset (one fold of a CV).
    `on_epoch` sees every epoch of a training run and may stop it (a search's pruner).
    """
    started = time.perf_counter()
    with _out_of_memory_is_a_user_error(cfg):
        validate(cfg)
        run_dir = Path(run_dir or HydraConfig.get().runtime.output_dir)
        world = distributed.setup(cfg.trainer)  # one rank of several (spawned, torchrun, Slurm)
        if world.size == 1 and cfg.trainer.devices > 1:  # trainer.devices processes run this job
            return distributed.spawn(run_job, cfg, run_dir, data, overrides)
        cfg, run_dir = world.own_outputs(cfg, run_dir)  # only rank 0 writes the run directory
        run_dir.mkdir(parents=True, exist_ok=True)
        job = Job(cfg, run_dir, world, _user_overrides(overrides), data, started,
                  parallel=_parallel_jobs() * world.local_size, on_epoch=on_epoch)
        _set_up_device(job)
        return JOBS[job_kind(cfg, data)](job)


def job_kind(cfg: DictConfig, data: Dataset | None) -> str:
    """`mode`, except that `cv.folds=N` makes a training job a cross-validation (whose folds,
    given their `data`, are training jobs again)."""
    mode = cfg.get("mode", "train")
    if mode == "train" and OmegaConf.select(cfg, "cv.folds") is not None and data is None:
        return "cv"
    return mode


def train(job: Job) -> float:
    return TrainRun(job).run()


def lr_find(job: Job) -> float:
    cfg = job.cfg
    run = build_components(cfg, job.world.device)
    use_threads(cfg.trainer, run.model, run.data, job.parallel)
    return find_lr(cfg, job.run_dir, run.data, run.model, run.optimizer, run.loss,
                   overrides=job.overrides)


def cross_validation(job: Job) -> float:
    data = load_data(job.cfg, job.world.device)
    return cross_validate(job.cfg, job.run_dir, data, train=run_job, overrides=job.overrides)


JOBS: dict[str, Callable[[Job], float]] = {
    "train": train,
    "lr_find": lr_find,
    "cv": cross_validation,
    "eval": retest,  # dlrun mode=eval trainer.resume=RUN: RUN's weights on every split
}


def _set_up_device(job: Job) -> None:
    """Precision the device supports, TF32, determinism, and threads until the model is built."""
    check_precision(job.cfg.trainer.precision, job.world.device)
    configure_backend(job.cfg.trainer, job.world.device, job.parallel)


@contextlib.contextmanager
def _out_of_memory_is_a_user_error(cfg: DictConfig):
    try:
        yield
    except torch.OutOfMemoryError:
        batch = cfg.trainer.batch_size
        smaller = f"trainer.batch_size={max(1, batch // 2)}" if batch else "trainer.batch_size=256"
        raise UserError(
            f"the device ran out of memory at trainer.batch_size={batch}; try {smaller} "
            "(or a smaller model)."
        ) from None


def _parallel_jobs() -> int:
    """How many jobs a parallel launcher (joblib's n_jobs) runs at once, this one included."""
    if not HydraConfig.initialized():
        return 1
    return int(OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=1) or 1)


def _user_overrides(given: list[str] | None) -> list[str]:
    """What the user typed (the remedies' commands start from it): given, or Hydra's task overrides."""
    if given is not None:
        return list(given)
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
