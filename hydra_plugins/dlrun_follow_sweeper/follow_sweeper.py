"""`hydra/sweeper=follow` (`follow=on`): the Hydra Sweeper plugin that walks the optimization
map from your command (dlrun.follow).

Hydra instantiates sweepers only from the `hydra_plugins` package and imports every module
there when it starts, so this module holds only the plugin class, and imports dlrun's code
when it sweeps. (No `from __future__ import annotations`: Hydra's plugin scan runs this
module before registering it in sys.modules, where dataclasses look string annotations up.)
"""

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class FollowSweeper(Sweeper):
    def __init__(self, **_: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from dlrun.follow.sweep import follow

        return follow(self, arguments)
