"""One job of a stack, seen from its own run directory: its Hydra context, its .hydra/ record,
and the files a solo run writes as it trains (metrics.jsonl, TensorBoard, warnings).

Everything a job writes goes through the writers a solo run uses (dlrun.report), fed with
the job's typed `EpochRow`s, so a stacked job's directory reads like any other.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from dlrun.build import Components
from dlrun.models import param_counts
from dlrun.recipe import Job, TrainRun
from dlrun.records import Summary


@contextlib.contextmanager
def as_job(config: DictConfig):
    """Hydra's job config set to this job's while its part of the stack is built or logged
    (what `hydra.core.utils.run_job` sets while a task function runs)."""
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.set_config(config)
    try:
        yield
    finally:
        instance.cfg = previous


def prepare_run_dir(config: DictConfig) -> Path:
    """The job's output directory, set in its config as `run_job` sets it (call under `as_job`)."""
    out = Path(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir)).absolute()
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = str(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_record(config: DictConfig, cfg: DictConfig) -> None:
    """`.hydra/` as `run_job` writes it when the job finishes; written before that only when a
    stack stops early or writes checkpoints as it goes, so that its jobs are runs that
    dlrun-summary and trainer.resume can read (call under `as_job`)."""
    if config.hydra.output_subdir is None:
        return
    record = Path(config.hydra.runtime.output_dir, str(config.hydra.output_subdir))
    record.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, record / "config.yaml")
    OmegaConf.save(HydraConfig.instance().cfg, record / "hydra.yaml")
    OmegaConf.save(config.hydra.overrides.task, record / "overrides.yaml")


def task_config(config: DictConfig) -> DictConfig:
    """The config a task function receives: the job's, without its `hydra` node."""
    cfg = copy.deepcopy(config)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


class StackedRun(TrainRun):
    """One job of a stack: a training run whose parts were built, and whose epochs were
    trained, together with the stack's other jobs. It logs its own epochs into its own files
    and finishes exactly as a solo run does (summary, diagnosis, result), except that the
    diagnosis's probes get the job's share of the stack's time, not the whole stack's."""

    def __init__(self, job: Job, parts: Components, threads: int, stack_size: int, label: str):
        """(Call under `as_job`: the HParams record reads the job's overrides and choices.)"""
        super().__init__(job)
        self.parts, self.threads, self.stack_size = parts, threads, stack_size
        self.stack: dict | None = None  # the stack's jobs, size and speed, once it has trained
        self.label = f"{label}: "
        self.layers = param_counts(parts.model)
        self.resume = None
        self.open_logs(0)

    def summary(self) -> Summary:
        summary = super().summary()
        summary.stack = self.stack
        return summary

    def train_seconds(self, summary: Summary) -> float | None:
        return None if summary.wall_time_s is None else summary.wall_time_s / self.stack_size

    def close(self) -> None:
        self.metrics.close()
        self.board.close()


def job_label(config: DictConfig) -> str:
    return f"job {config.hydra.job.num}"
