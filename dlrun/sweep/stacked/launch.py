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
from pathlib import Path

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
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


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    configs = compose_jobs(launcher, job_overrides, initial_job_idx)
    tasks = [task_config(config) for config in configs]
    plan = grouping.plan(tasks, launcher.max_stack)
    for line in describe(plan, configs):
        log.info(line)
    sys.stdout.flush()

    returns: dict[int, JobReturn] = {}
    units = sorted([(stack[0], stack) for stack in plan.stacks] + [(i, None) for i in plan.alone])
    for first, stack in units:
        if stack is None:
            returns[first] = run_alone(launcher, configs[first])
            continue
        number = plan.stacks.index(stack) + 1
        members = [Member(configs[i], tasks[i]) for i in stack]
        try:
            done = train_stack(members, launcher.hydra_context, number, launcher.checkpoint_every)
        except Exception as error:  # a stack that cannot train as one: its jobs run alone
            log.warning(f"stack {number} could not train as one ({type(error).__name__}: {error}); "
                        "its jobs run one by one")
            for m in members:
                forget_partial_files(m)
            done = [run_alone(launcher, m.config) for m in members]
        returns.update(zip(stack, done))
        configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    return [returns[i] for i in range(len(configs))]


def run_alone(launcher, config: DictConfig) -> JobReturn:
    """A job as the basic launcher runs it: Hydra's run_job around the ordinary task function."""
    log.info(f"\t#{config.hydra.job.num} : {' '.join(filter_overrides(config.hydra.overrides.task))}")
    result = run_job(hydra_context=launcher.hydra_context, task_function=launcher.task_function,
                     config=config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
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
