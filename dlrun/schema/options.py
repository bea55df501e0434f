"""What choosing one option of a config group sets in that group, as Hydra composes it.

A YAML option sets only what differs from its schema, so its file alone no longer says
what it sets: `option_values` composes the option file as a config of its own (its
schema's defaults under its own values). No torch here.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf


def option_values(conf_dir: str | Path, group: str, option: str) -> dict | None:
    """The group's values under `group=option` (interpolations unresolved, as written);
    None when conf_dir has no such option."""
    if not Path(conf_dir, group, f"{option}.yaml").is_file():
        return None
    return copy.deepcopy(_composed(str(Path(conf_dir).resolve()), group, option))


@cache  # a compose takes ~0.1 s (Hydra composes its own config too); remedies ask repeatedly
def _composed(conf_dir: str, group: str, option: str) -> dict:
    name = f"{group}/{option}"
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its own search path
        cfg = compose(config_name=name)
    else:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            cfg = compose(config_name=name)
    return OmegaConf.to_container(cfg[group], resolve=False)
