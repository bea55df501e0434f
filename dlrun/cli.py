"""The `dlrun` command: Hydra composes the config; this file hands it to the trainer.

torch is imported only inside the job, so `dlrun --help` and `--cfg job` answer
without paying for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from dlrun.errors import UserError
from dlrun.schema import register_schemas


def _config_dir() -> str:
    """The shipped configs: inside the package when installed, top-level `conf/` when editable."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"dlrun's configs are missing: looked in {package / 'conf'}")


def _run_dir(resume: str | None, fresh: str) -> str:
    """A resumed run keeps writing into its own directory; a new run gets a fresh one."""
    if resume is None:
        return fresh
    if not os.path.isdir(resume):
        raise UserError(
            f"trainer.resume={resume}: no such run directory; pass the directory of an earlier "
            "run, e.g. trainer.resume=outputs/runs/<date>/<time>."
        )
    return os.path.abspath(resume)


def _hydra_subdir(resume: str | None, stamp: str) -> str:
    return ".hydra" if resume is None else f".hydra/resumed-{stamp}"


register_schemas()
OmegaConf.register_new_resolver("dlrun_run_dir", _run_dir, replace=True)
OmegaConf.register_new_resolver("dlrun_hydra_subdir", _hydra_subdir, replace=True)


@hydra.main(version_base="1.3", config_path=_config_dir(), config_name="config")
def run(cfg: DictConfig) -> float:
    """One job: build, train, diagnose, report. Returns the final validation loss for sweepers."""
    from dlrun.runner import run_job  # imports torch

    try:
        return run_job(cfg)
    except UserError as error:
        print(f"dlrun: error: {error}", file=sys.stderr)
        sys.exit(2)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def with_resumed_overrides(argv: list[str]) -> list[str]:
    """`dlrun trainer.resume=DIR` re-composes DIR's own run: its saved overrides come first,
    and anything typed now replaces the saved override of the same key."""
    resume = next((a.split("=", 1)[1] for a in argv if _key(a) == "trainer.resume"), None)
    saved = Path(resume or "", ".hydra", "overrides.yaml")
    if resume is None or not saved.is_file():
        return argv
    typed = {_key(a) for a in argv}
    earlier = [o for o in OmegaConf.load(saved) if _key(o) not in typed]
    return [*earlier, *argv]


def main() -> None:
    sys.argv[1:] = with_resumed_overrides(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
