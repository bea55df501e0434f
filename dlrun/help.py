"""`dlrun --help` and `dlrun --version`, answered without importing torch.

Hydra's own `--help` re-reads the whole config store once per option (seconds) and, placed
after `-cd DIR`, fails to parse; this one composes the config once, with the flags that
shape it (`-cd/--config-dir`, `-cp/--config-path`, `-cn/--config-name`), and lists the
groups of every config directory in play, the user's included.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from dlrun.overrides import split_argv
from dlrun.paths import config_dir


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_line() -> str:
    """dlrun's version, and the Hydra and torch it runs on (read without importing torch)."""
    import dlrun

    return f"dlrun {dlrun.__version__} (Hydra {_version('hydra-core')}, torch {_version('torch')})"


def flag_value(flags: list[str], *names: str) -> str | None:
    """The value of the last of Hydra's flags named `names` (`-cd DIR` or `--config-dir=DIR`)."""
    found = None
    for i, flag in enumerate(flags):
        name, inline, value = flag.partition("=")
        if name in names:
            found = value if inline else (flags[i + 1] if i + 1 < len(flags) else None)
    return found


def config_dirs(flags: list[str]) -> tuple[str, list[str]]:
    """(The primary config directory, the extra ones `-cd` adds), as Hydra would use them."""
    primary = flag_value(flags, "-cp", "--config-path") or config_dir()
    extra = flag_value(flags, "-cd", "--config-dir")
    return os.path.abspath(primary), [os.path.abspath(extra)] if extra else []


def group_options(dirs: list[str]) -> dict[str, list[str]]:
    """Each config group (a folder of YAML files) in `dirs`, with its options, merged."""
    groups: dict[str, set[str]] = {}
    for root in dirs:
        for folder in Path(root).iterdir() if Path(root).is_dir() else []:
            if folder.is_dir() and folder.name != "hydra":
                options = {p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_")}
                groups.setdefault(folder.name, set()).update(options)
    return {group: sorted(options) for group, options in sorted(groups.items()) if options}


def print_help(argv: list[str]) -> None:
    from hydra import compose, initialize_config_dir

    flags, overrides = split_argv(argv)
    primary, extra = config_dirs(flags)
    name = flag_value(flags, "-cn", "--config-name") or "config"
    searchpath = [f"hydra.searchpath=[{','.join('file://' + d for d in extra)}]"] if extra else []
    with initialize_config_dir(config_dir=primary, version_base="1.3"):
        cfg = compose(name, overrides=[*searchpath, *overrides], return_hydra_config=True)
    text = cfg.hydra.help
    with open_dict(cfg):
        del cfg["hydra"]
    print(text.header)
    print("== Config groups ==")
    print("Pick one option per group with group=option (reg takes a list: reg=[l2,dropout]).\n")
    for group, options in group_options([primary, *extra]).items():
        print(f"{group}: {', '.join(options)}")
    print("\n== Composed config (override any key with key=value) ==\n")
    print(OmegaConf.to_yaml(cfg))
    print(text.footer)
    print(version_line())
