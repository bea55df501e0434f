"""The walk under Hydra: the follow sweeper's `sweep`, with the configured launcher.

Each batch goes through `sweeper.launcher.launch` exactly as the basic sweeper's do (so
any launcher runs it: basic, joblib, Ray, submitit, stacked), and every run of the walk is
an ordinary numbered job directory of the sweep. The jobs get your overrides without
`follow=...`, so their own remedies, overrides.yaml and the final command are the plain
single-run commands. A remedy whose overrides do not compose is recorded as failed and
never launched.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from dlrun import overrides as ov
from dlrun.config import check_ranges
from dlrun.errors import UserError
from dlrun.follow.commands import reproduce, user_flags, without_follow
from dlrun.follow.files import write_path
from dlrun.follow.outcome import failed, read_outcome
from dlrun.follow.path import FollowPath, Run, Stop
from dlrun.follow.tree import print_path
from dlrun.follow.walk import Settings, walk
from dlrun.schema.follow import FollowConfig
from dlrun.sweep.job import one_line


def settings_of(config: DictConfig) -> Settings:
    """follow.width/rounds/budget as `follow=on` composed them (their defaults without it)."""
    node = OmegaConf.select(config, "follow", default=None)
    if node is None:
        node = OmegaConf.structured(FollowConfig)
    check_ranges(node, FollowConfig, prefix="follow.")
    return Settings(width=int(node.width), rounds=int(node.rounds),
                    budget=None if node.budget is None else float(node.budget))


class HydraLaunch:
    """The walk's `launch`: composes each job first, launches the ones that compose as one
    batch, numbers them on from the previous batch, reads each job's outcome."""

    def __init__(self, sweeper):
        self.sweeper = sweeper
        self.next_job = 0
        self.returns: list[list[JobReturn]] = []

    def __call__(self, batch: list[list[str]]) -> list[Run]:
        runs: list[Run | None] = [None] * len(batch)
        loader, config = self.sweeper.hydra_context.config_loader, self.sweeper.config
        launchable = []
        for i, overrides in enumerate(batch):
            try:
                loader.load_sweep_config(master_config=config, sweep_overrides=list(overrides))
                launchable.append(i)
            except Exception as error:  # a user error of the remedy: recorded, never launched
                runs[i] = Run(None, list(overrides), failed(f"does not compose: {one_line(error)}"))
        if launchable:
            returns = self.sweeper.launcher.launch([batch[i] for i in launchable],
                                                   initial_job_idx=self.next_job)
            self.returns.append(list(returns))
            for k, (i, ret) in enumerate(zip(launchable, returns)):
                runs[i] = self._run(self.next_job + k, batch[i], ret)
            self.next_job += len(launchable)
        return runs

    def _run(self, job: int, overrides: list[str], ret: JobReturn) -> Run:
        hydra = getattr(ret, "hydra_cfg", None)
        run_dir = (Path(hydra.hydra.runtime.output_dir) if hydra is not None
                   else Path(self.sweeper.config.hydra.sweep.dir) / str(job))
        outcome = read_outcome(run_dir)
        if ret.status == JobStatus.FAILED and outcome.ok:  # the task raised after its files
            outcome = failed(one_line(ret._return_value))
        elif ret.status == JobStatus.FAILED and outcome.error and outcome.error.startswith("no summary"):
            outcome.error = one_line(ret._return_value)  # the exception says more
        return Run(job, list(overrides), outcome, dir=str(run_dir))


def follow(sweeper, arguments: list[str]) -> list[list[JobReturn]]:
    """Walk the map from `arguments` (your overrides); write and show the path."""
    config = sweeper.config
    swept = [o.text for o in ov.parse_all(arguments) if o.is_sweep]
    if swept:
        raise UserError(f"follow=on starts from one run, but {' '.join(swept)} is a sweep; "
                        "give one value each (or drop follow=on to run the sweep)")
    settings = settings_of(config)
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    launch = HydraLaunch(sweeper)
    path: FollowPath = walk(without_follow(arguments), launch, settings)
    path.command = reproduce(path.best.overrides, user_flags(config))
    write_path(path, sweep_dir)
    print_path(path, sweep_dir)
    if path.stop == Stop.FAILED:  # nothing was followed: your command itself needs fixing
        raise UserError(path.reason)
    return launch.returns
