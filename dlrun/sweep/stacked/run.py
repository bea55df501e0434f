"""One stack, from its jobs' composed configs to K finished run directories.

setup: each job's run directory, its parts built by dlrun.build as its solo run builds
them (same seed, so the same initial weights and data), its writers; train: the stacked
loop (dlrun.train.stacked), each epoch's rows logged into each job's files; finish: each
job through Hydra's `run_job`, as any launcher runs a job, whose task function writes
the summary and diagnosis with the runner's own `finish` and records a failure as a
sweep records any job's (dlrun.sweep.job).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.utils import JobReturn, run_job
from hydra.types import HydraContext
from omegaconf import DictConfig

from dlrun.build import Components, build_components, load_data
from dlrun.config import validate
from dlrun.models import param_counts
from dlrun.report.files import write_json
from dlrun.report.summary import summarize
from dlrun.runner import finish
from dlrun.sweep.job import run_sweep_job
from dlrun.sweep.stacked.display import StackDisplay
from dlrun.sweep.stacked.jobs import JobLog, as_job, job_label, prepare_run_dir, write_record
from dlrun.train.accel import check_precision, configure_backend, peak_memory
from dlrun.train.device import resolve_device
from dlrun.train.regularize import penalty_coefficients
from dlrun.train.signals import StopOnSignal
from dlrun.train.stacked import Stack, StackJob, fit_stack


@dataclass
class Member:
    """A job of the stack: its Hydra config, and what setup made of it."""

    config: DictConfig  # the composed sweep config, hydra node included
    cfg: DictConfig  # what the task function sees (the config without its hydra node)
    run_dir: Path = None
    parts: Components = None
    log: JobLog = None
    error: Exception | None = None  # its setup failed: it fails as its solo run would

    @property
    def num(self) -> int:
        return int(self.config.hydra.job.num)


def setup(members: list[Member], device: torch.device, record: bool) -> list[StackJob]:
    """Run directories, parts and writers of every job whose parts build (the others keep
    their error). Jobs with equal data share one copy. `record`: write .hydra/ now."""
    shared: dict[str, object] = {}
    jobs = []
    for m in members:
        with as_job(m.config):
            m.run_dir = prepare_run_dir(m.config)
            if record:
                write_record(m.config, m.cfg)
            try:
                validate(m.cfg)
                key = repr((m.cfg.data, m.cfg.trainer.seed))
                if key not in shared:  # the data loaders draw from numpy only, so a shared copy
                    shared[key] = load_data(m.cfg, device)  # leaves torch's seed as a solo build
                m.parts = build_components(m.cfg, device, shared[key])
            except Exception as error:  # e.g. optim=nesterov with optim.momentum=0
                m.error = error
                continue
            m.log = JobLog(m.cfg, m.run_dir, m.parts, job_label(m.config))
        l1, l2 = penalty_coefficients(m.cfg.get("reg"))
        jobs.append(StackJob(
            m.parts, int(m.cfg.trainer.seed), float(m.cfg.model.get("dropout", 0.0) or 0.0), l1, l2,
            m.cfg.trainer.grad_clip, bool(m.cfg.diagnose.enabled),
            m.run_dir / "checkpoints" if m.cfg.trainer.checkpoint else None))
    return jobs


def train_stack(members: list[Member], hydra_context: HydraContext, number: int,
                checkpoint_every: int | None, workers: int = 1) -> list[JobReturn]:
    """Train the stack and finish each job; JobReturns in the members' order."""
    started = time.perf_counter()
    order = [m.num for m in members]
    first = members[0].cfg
    device = resolve_device(first.trainer.device)
    check_precision(first.trainer.precision, device)
    threads = configure_backend(first.trainer, device, parallel_jobs=workers)
    jobs = setup(members, device, record=checkpoint_every is not None)
    failed = [m for m in members if m.error is not None]
    members = [m for m in members if m.error is None]
    if not members:
        return [_fail_in_hydra(m, hydra_context) for m in failed]
    display = StackDisplay(number, [m.num for m in members], first.trainer.epochs, first.trainer.progress)
    try:
        stack = Stack(jobs, first.trainer)
        with StopOnSignal() as stop:
            for rows in fit_stack(stack, trainer=first.trainer, should_stop=stop.requested,
                                  checkpoint_every=checkpoint_every):
                for j, row in rows.items():
                    members[j].log.epoch(row, members[j].parts.model)
                display.update(rows)
    finally:
        display.close()
        for m in members:
            m.log.close()
    wall = time.perf_counter() - started
    steps = sum(r["steps"] for m in members for r in m.log.timed)
    seconds = max(sum(r["step_time_s"] for r in m.log.timed) for m in members)  # the stack's
    stacked = {"jobs": [m.num for m in members], "size": len(members),
               "model_steps_per_s": steps / max(seconds, 1e-12)}
    summaries = [_summary(m, device, wall, threads, stacked) for m in members]
    if stop.signum is not None:
        _interrupted(members, summaries, stop.signum)
    returns = {m.num: _finish_in_hydra(m, summary, hydra_context) for m, summary in zip(members, summaries)}
    returns.update({m.num: _fail_in_hydra(m, hydra_context) for m in failed})
    return [returns[num] for num in sorted(returns, key=order.index)]


def _summary(m: Member, device: torch.device, wall: float, threads: int, stacked: dict) -> dict:
    """summary.json as a solo run's: the job's own rows; its time is the stack's (it ran that long)."""
    summary = summarize(m.log.rows, m.log.timed, m.run_dir, m.parts.params, device, wall)
    summary.update(params_per_layer=param_counts(m.parts.model), world_size=1, threads=threads,
                   **peak_memory(device))
    summary["stack"] = stacked
    return summary


def _finish_in_hydra(m: Member, summary: dict, hydra_context: HydraContext) -> JobReturn:
    """The job's last part runs as a job of the sweep: Hydra's run_job around the runner's finish."""
    overrides = list(m.config.hydra.overrides.task)

    def finish_job(cfg: DictConfig) -> float:
        return finish(m.cfg, m.run_dir, m.parts, summary, m.log.rows, None, overrides)

    return run_job(hydra_context=hydra_context, config=m.config,
                   task_function=lambda cfg: run_sweep_job(finish_job, cfg),
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _fail_in_hydra(m: Member, hydra_context: HydraContext) -> JobReturn:
    """A job whose parts did not build: recorded as failed, as its solo run would be."""
    def raise_error(cfg: DictConfig) -> float:
        raise m.error

    return run_job(hydra_context=hydra_context, config=m.config,
                   task_function=lambda cfg: run_sweep_job(raise_error, cfg),
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _interrupted(members: list[Member], summaries: list[dict], signum: int) -> None:
    """Ctrl-C: every job's summary says so and its checkpoints hold its last epoch; the sweep ends."""
    for m, summary in zip(members, summaries):
        summary["status"] = "interrupted"
        write_json(m.run_dir / "summary.json", summary)
        with as_job(m.config):
            write_record(m.config, m.cfg)
    done = max((r["epoch"] for m in members for r in m.log.rows), default=0)
    print(f"dlrun: {signal.Signals(signum).name} received: the stack of jobs "
          f"{', '.join(str(m.num) for m in members)} stopped after epoch {done}; continue a job "
          f"with: dlrun trainer.resume=<its directory>, e.g. {members[0].run_dir}", file=sys.stderr)
    raise SystemExit(128 + signum)
