"""What choosing one option of a config group sets in that group, as Hydra composes it.

A YAML option sets only what differs from its schema, so its file alone no longer says
what it sets: `option_values` composes the option (its schema's defaults under its own
values) with Hydra. No torch here.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf


def option_values(conf_dir: str | Path, group: str, option: str) -> dict | None:
    """The group's values under `group=option` (interpolations unresolved, as written);
    None when conf_dir has no such option."""
    if not Path(conf_dir, group, f"{option}.yaml").is_file():
        return None
    overrides = [f"{group}={option}"]
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its own search path
        cfg = compose(config_name="config", overrides=overrides)
    else:
        with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg[group], resolve=False)
