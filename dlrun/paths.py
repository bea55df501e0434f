"""Where dlrun's shipped files are: a leaf module (no torch, no Hydra), so any layer may ask."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """The shipped configs: inside the package when installed, top-level `conf/` when editable."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"dlrun's configs are missing: looked in {package / 'conf'}")
