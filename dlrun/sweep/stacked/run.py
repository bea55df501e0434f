"""One stack, from its jobs' composed configs to K finished run directories.

setup: each job's run directory, its parts built by dlrun.build as its solo run builds
them (same seed, so the same initial weights and data), its writers; train: the stacked
loop (dlrun.train.stacked), each epoch's rows logged into each job's files; finish: each
job through Hydra's `run_job`, as any launcher runs a job, whose task function writes
the summary and diagnosis with the recipe's own `finish` (dlrun.recipe.TrainRun) and
records a failure as a sweep records any job's (dlrun.sweep.job).
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
from dlrun.recipe import Job
from dlrun.report.files import write_json
from dlrun.sweep.job import run_sweep_job
from dlrun.sweep.stacked.display import StackDisplay
from dlrun.sweep.stacked.jobs import StackedRun, as_job, job_label, prepare_run_dir, write_record
from dlrun.train.accel import check_precision, configure_backend
from dlrun.train.device import resolve_device
from dlrun.train.distributed import World
from dlrun.train.regularize import penalty_coefficients
from dlrun.train.signals import StopOnSignal
from dlrun.train.stacked import Stack, StackJob, fit_stack
from dlrun.train.threads import cores_available, default_threads, run_step_flops


@dataclass
class Member:
    """A job of the stack: its Hydra config, and what setup made of it."""

    config: DictConfig  # the composed sweep config, hydra node included
    cfg: DictConfig  # what the task function sees (the config without its hydra node)
    run_dir: Path = None
    parts: Components = None
    run: StackedRun = None  # its own files, summary and diagnosis
    error: Exception | None = None  # its setup failed: it fails as its solo run would

    @property
    def num(self) -> int:
        return int(self.config.hydra.job.num)


def setup(members: list[Member], device: torch.device, workers: int, started: float,
          record: bool) -> list[StackJob]:
    """Run directories, parts and runs of every job whose parts build (the others keep their
    error), and the stack's threads. Jobs with equal data share one copy. `record`: write
    .hydra/ now."""
    shared: dict[str, object] = {}
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
    built = [m for m in members if m.error is None]
    threads = stack_threads(members[0].cfg.trainer, built, workers)
    shared_probes: dict = {}  # the diagnosis's data- and architecture-only probes, run once
    jobs = []
    for m in built:
        with as_job(m.config):
            job = Job(m.cfg, m.run_dir, World(device), list(m.config.hydra.overrides.task), None,
                      started)
            m.run = StackedRun(job, m.parts, threads, len(built), job_label(m.config))
            m.run.shared_probes = shared_probes
        l1, l2 = penalty_coefficients(m.cfg.get("reg"))
        jobs.append(StackJob(
            m.parts, int(m.cfg.trainer.seed), float(m.cfg.model.get("dropout", 0.0) or 0.0), l1, l2,
            m.cfg.trainer.grad_clip, bool(m.cfg.diagnose.enabled),
            m.run_dir / "checkpoints" if m.cfg.trainer.checkpoint else None))
    return jobs


def stack_threads(trainer, members: list[Member], workers: int) -> int:
    """Threads by the thread rule (dlrun.train.threads), for the work of one stacked step: the
    sum of its jobs' steps."""
    if trainer.threads is None and members:
        work = sum(run_step_flops(m.cfg.trainer, m.parts.model, m.parts.data) for m in members)
        threads = default_threads(work, cores_available(), workers)
    else:
        threads = trainer.threads or 1
    torch.set_num_threads(threads)
    return threads


def train_stack(members: list[Member], hydra_context: HydraContext, number: int,
                checkpoint_every: int | None, workers: int = 1) -> list[JobReturn]:
    """Train the stack and finish each job; JobReturns in the members' order."""
    started = time.perf_counter()
    order = [m.num for m in members]
    first = members[0].cfg
    device = resolve_device(first.trainer.device)
    check_precision(first.trainer.precision, device)
    configure_backend(first.trainer, device, workers)
    jobs = setup(members, device, workers, started, record=checkpoint_every is not None)
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
                    members[j].run.record(row)
                display.update(rows)
    finally:
        display.close()
        for m in members:
            m.run.close()
    steps = sum(r.steps for m in members for r in m.run.timed)
    seconds = max(sum(r.step_time_s for r in m.run.timed) for m in members)  # the stack's
    stacked = {"jobs": [m.num for m in members], "size": len(members),
               "model_steps_per_s": steps / max(seconds, 1e-12)}
    if stop.signum is not None:
        _interrupted(members, stacked, stop.signum)
    returns = {m.num: _finish_in_hydra(m, stacked, hydra_context) for m in members}
    returns.update({m.num: _fail_in_hydra(m, hydra_context) for m in failed})
    return [returns[num] for num in sorted(returns, key=order.index)]


def _finish_in_hydra(m: Member, stacked: dict, hydra_context: HydraContext) -> JobReturn:
    """The job's last part runs as a job of the sweep: Hydra's run_job around the run's own
    finish (summary, diagnosis, result), as a solo run ends."""
    def finish_job(cfg: DictConfig) -> float:
        m.run.stack = stacked
        return m.run.finish()

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


def _interrupted(members: list[Member], stacked: dict, signum: int) -> None:
    """Ctrl-C: every job's summary says so and its checkpoints hold its last epoch; the sweep ends."""
    for m in members:
        m.run.stack = stacked
        summary = m.run.summary()
        summary.status = "interrupted"
        write_json(m.run_dir / "summary.json", summary.to_json())
        with as_job(m.config):
            write_record(m.config, m.cfg)
    done = max((r.epoch for m in members for r in m.run.metrics.rows), default=0)
    print(f"dlrun: {signal.Signals(signum).name} received: the stack of jobs "
          f"{', '.join(str(m.num) for m in members)} stopped after epoch {done}; continue a job "
          f"with: dlrun trainer.resume=<its directory>, e.g. {members[0].run_dir}", file=sys.stderr)
    raise SystemExit(128 + signum)
