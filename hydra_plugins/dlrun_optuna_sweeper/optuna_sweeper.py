"""`hparams_search=tpe|random|cmaes|gp`: the Hydra Sweeper plugin over current Optuna.

Hydra instantiates sweepers only from the `hydra_plugins` package and imports every module
there when it starts, so this module holds only the plugin class and its config schema;
Optuna and the search loop (dlrun.sweep.search) are imported when a search runs. (No
`from __future__ import annotations`: Hydra's plugin scan runs this module before
registering it in sys.modules, where dataclasses look string annotations up.)
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class OptunaSearchConf:
    _target_: str = "hydra_plugins.dlrun_optuna_sweeper.optuna_sweeper.OptunaSearch"
    direction: str = "minimize"  # the val loss each job returns
    n_trials: int = 20
    n_jobs: int = 2  # trials asked for at once: one launch, parallel under a parallel launcher
    max_failure_rate: float = 0.5  # the search stops when more of a batch than this fails
    sampler: Any = None  # an Optuna sampler config with `_target_` (the presets set one)
    params: dict | None = None  # key -> interval(...), tag(log, interval(...)), choice(...)
    # hparams_search.pruner / hparams_search.resume, the knobs users type (presets set them)
    pruner: str = "${oc.select:hparams_search.pruner,median}"
    resume: str | None = "${oc.select:hparams_search.resume,null}"


ConfigStore.instance().store(group="hydra/sweeper", name="dlrun_optuna", node=OptunaSearchConf,
                             provider="dlrun")


class OptunaSearch(Sweeper):
    def __init__(self, **settings: Any) -> None:
        settings.pop("_target_", None)
        self.settings = settings
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list) -> Any:
        from dlrun.sweep.search import SearchSettings, run_search

        settings = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                    for k, v in self.settings.items()}
        return run_search(SearchSettings(**settings), self.config, self.launcher,
                          self.validate_batch_is_legal, list(arguments))
