"""hydra/launcher=stacked: compose every job, group them into stacks, say how, run them.

The plugin class (hydra_plugins/dlrun_stacked_launcher) delegates here, as Hydra's joblib
launcher delegates to its `_core`. Each job is composed as the basic launcher composes
it (`load_sweep_config`, job id and number); stacks train in job order beside the jobs
that run alone, which go through the ordinary task function exactly as the basic
launcher runs them. A stack that cannot train as one (shapes the configs did not show,
a crash) leaves a warning and its jobs run alone.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from joblib import Parallel, delayed
from omegaconf import DictConfig, open_dict

from dlrun.sweep.stacked import grouping
from dlrun.sweep.stacked.jobs import task_config
from dlrun.sweep.stacked.run import Member, train_stack

log = logging.getLogger(__name__)


def compose_jobs(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[DictConfig]:
    configs = []
    for i, overrides in enumerate(job_overrides):
        config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = config.hydra.job.num = initial_job_idx + i
        configs.append(config)
    return configs


def describe(plan: grouping.Plan, configs: list[DictConfig]) -> list[str]:
    """How the jobs were grouped, one line per stack and per job left alone."""
    num = [int(c.hydra.job.num) for c in configs]
    lines = [f"Stacking {len(configs)} jobs: {len(plan.stacks)} stack(s), {len(plan.alone)} job(s) alone"]
    for number, (stack, varied) in enumerate(zip(plan.stacks, plan.varied), start=1):
        shown = ", ".join(varied[:6]) + (", ..." if len(varied) > 6 else "") or "nothing"
        lines.append(f"\tstack {number}: jobs {_ranges([num[i] for i in stack])} "
                     f"({len(stack)} jobs, differing in {shown})")
    for i, reason in sorted(plan.alone.items()):
        overrides = " ".join(filter_overrides(configs[i].hydra.overrides.task))
        lines.append(f"\t#{num[i]} alone: {reason}: {overrides}")
    return lines


@dataclass
class Work:
    """What running a stack or a lone job needs, in this process or a worker's."""

    hydra_context: HydraContext
    task_function: TaskFunction
    logging: tuple  # hydra.hydra_logging and hydra.verbose, for configure_log
    checkpoint_every: int | None
    workers: int  # stacks trained at once (threads are shared among them)


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    configs = compose_jobs(launcher, job_overrides, initial_job_idx)
    tasks = [task_config(config) for config in configs]
    plan = grouping.plan(tasks, launcher.max_stack, launcher.n_jobs)
    for line in describe(plan, configs):
        log.info(line)
    sys.stdout.flush()

    work = Work(launcher.hydra_context, launcher.task_function,
                (launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose),
                launcher.checkpoint_every, launcher.n_jobs)
    units = sorted([(s[0], i + 1, s) for i, s in enumerate(plan.stacks)]
                   + [(i, None, [i]) for i in plan.alone])
    calls = [(number, [Member(configs[i], tasks[i]) for i in jobs]) for _, number, jobs in units]
    if launcher.n_jobs > 1 and len(calls) > 1:  # units side by side in joblib's worker processes
        state = Singleton.get_state()
        done = Parallel(n_jobs=launcher.n_jobs, backend="loky")(
            delayed(run_unit)(work, number, members, state) for number, members in calls)
    else:
        done = [run_unit(work, number, members) for number, members in calls]
    returns = {i: ret for (_, _, jobs), rets in zip(units, done) for i, ret in zip(jobs, rets)}
    configure_log(*work.logging)
    return [returns[i] for i in range(len(configs))]


def run_unit(work: Work, number: int | None, members: list[Member], state=None) -> list[JobReturn]:
    """A stack (`number`), or one job alone (None); `state`: Hydra's singletons, in a worker."""
    if state is not None:
        setup_globals()
        Singleton.set_state(state)
    configure_log(*work.logging)
    if number is None:
        return [run_alone(work, members[0].config)]
    try:
        return train_stack(members, work.hydra_context, number, work.checkpoint_every, work.workers)
    except Exception as error:  # a stack that cannot train as one: its jobs run alone
        log.warning(f"stack {number} could not train as one ({type(error).__name__}: {error}); "
                    "its jobs run one by one")
        for m in members:
            forget_partial_files(m)
        return [run_alone(work, m.config) for m in members]


def run_alone(work: Work, config: DictConfig) -> JobReturn:
    """A job as the basic launcher runs it: Hydra's run_job around the ordinary task function."""
    log.info(f"\t#{config.hydra.job.num} : {' '.join(filter_overrides(config.hydra.overrides.task))}")
    result = run_job(hydra_context=work.hydra_context, task_function=work.task_function,
                     config=config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    configure_log(*work.logging)
    return result


def forget_partial_files(member: Member) -> None:
    """What a stack that stopped wrote into a job's directory, before the job runs alone there."""
    if member.run_dir is None:
        return
    for name in ("metrics.jsonl", "summary.json"):
        (member.run_dir / name).unlink(missing_ok=True)
    for name in ("tb", "checkpoints"):
        shutil.rmtree(member.run_dir / name, ignore_errors=True)


def _ranges(nums: list[int]) -> str:
    """[0, 1, 2, 5] -> '#0-#2, #5'."""
    parts, start = [], nums[0]
    for a, b in zip(nums, [*nums[1:], None]):
        if b != a + 1:
            parts.append(f"#{start}" if start == a else f"#{start}-#{a}")
            start = b
    return ", ".join(parts)
