"""`hydra/launcher=stacked`: the Hydra Launcher plugin that trains compatible sweep jobs as one
stacked model (dlrun.sweep.stacked).

Hydra instantiates launchers only from the `hydra_plugins` package and imports every module
there when it starts, so this module holds only the plugin class and its config schema,
and imports dlrun's (and torch's) code when it launches. (No `from __future__ import
annotations`: Hydra's plugin scan runs this module before registering it in sys.modules,
where dataclasses look string annotations up.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.dlrun_stacked_launcher.stacked_launcher.StackedLauncher"
    max_stack: int = 64  # at most this many jobs in one stack; a larger group is split
    checkpoint_every: int | None = None  # also write every job's checkpoints every N epochs
    n_jobs: int = 1  # stacks (and lone jobs) trained at once, in joblib worker processes


ConfigStore.instance().store(group="hydra/launcher", name="dlrun_stacked", node=StackedLauncherConf,
                             provider="dlrun")


class StackedLauncher(Launcher):
    def __init__(self, max_stack: int = 64, checkpoint_every: int | None = None, n_jobs: int = 1,
                 **_: Any) -> None:
        self.max_stack, self.checkpoint_every, self.n_jobs = max_stack, checkpoint_every, n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from dlrun.sweep.stacked.launch import launch

        return launch(self, job_overrides, initial_job_idx)
