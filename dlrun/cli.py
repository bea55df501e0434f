"""The `dlrun` command: Hydra composes the config; this file hands it to the trainer.

torch is imported only inside the job, so `dlrun --help` and `--cfg job` answer
without paying for it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlrun.config import check_resume_dir
from dlrun.errors import UserError
from dlrun.explain import explain
from dlrun.help import print_help, version_line
from dlrun.overrides import with_resumed_overrides
from dlrun.paths import config_dir
from dlrun.report.runlog import logged_to
from dlrun.schema import register_schemas
from dlrun.sweep.job import run_sweep_job
from dlrun.sweep.trial import trial_reporter


def _run_dir(resume: str | None, fresh: str) -> str:
    """A resumed run keeps writing into its own directory; a new run gets a fresh one.

    Under torchrun every rank composes the config; ranks other than 0 get a scratch
    directory (removed at exit) so that only rank 0's run directory appears.
    """
    rank = int(os.environ.get("RANK", "0"))
    if rank > 0:
        scratch = os.path.join(tempfile.gettempdir(), f"dlrun-rank{rank}-{os.getpid()}")
        atexit.register(shutil.rmtree, scratch, True)
        return scratch
    if resume is None:
        return fresh
    check_resume_dir(resume)
    return os.path.abspath(resume)


def _hydra_subdir(resume: str | None, stamp: str, mode: str = "train") -> str | None:
    if mode == "eval":  # a re-test records itself in RUN/eval-<time>.json, nothing else
        return None
    return ".hydra" if resume is None else f".hydra/resumed-{stamp}"


def _sweep_dir(resume: str | None, fresh: str) -> str:
    """A continued search (`hparams_search.resume=DIR`) adds its trials to DIR."""
    return fresh if resume is None else os.path.abspath(resume)


register_schemas()
OmegaConf.register_new_resolver("dlrun_sweep_dir", _sweep_dir, replace=True)
OmegaConf.register_new_resolver("dlrun_run_dir", _run_dir, replace=True)
OmegaConf.register_new_resolver("dlrun_hydra_subdir", _hydra_subdir, replace=True)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def run(cfg: DictConfig) -> float:
    """One job: build, train, diagnose, report. Returns the final validation loss for sweepers."""
    from dlrun.runner import run_job  # imports torch

    with logged_to(Path(HydraConfig.get().runtime.output_dir)) as log:  # dlrun.log
        if cfg.get("mode") == "eval":  # a re-test writes only its eval-<time>.json into the run
            log.discard()
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # any failure is recorded in the job's summary.json and the sweep goes on; a trial
            # of dlrun's Optuna search reports its epochs to the study (and may be pruned)
            return run_sweep_job(partial(run_job, on_epoch=trial_reporter(cfg)), cfg)
        try:
            _check_resumed_dir(cfg.trainer.resume)
            return run_job(cfg)
        except Exception as error:  # noqa: BLE001  said here, before Hydra adds its own lines
            explained = None if show_tracebacks() else explain(error)
            if explained is None:
                raise
        print(f"dlrun: {explained.line}", file=sys.stderr)
        if explained.code == 2 and cfg.trainer.resume is not None:
            log.discard()
            _forget_failed_resume()
    sys.exit(explained.code)


def _check_resumed_dir(resume: str | None) -> None:
    """A resumed run writes only into the run it resumes, so that one directory holds its
    whole history; `hydra.run.dir` naming another is refused."""
    if resume is None or int(os.environ.get("RANK", "0")) > 0:  # other ranks: a scratch dir
        return
    out = HydraConfig.get().runtime.output_dir
    if os.path.realpath(out) != os.path.realpath(resume):
        raise UserError(f"trainer.resume={resume} writes only into the run it resumes, so its "
                        f"history stays in one directory; drop hydra.run.dir={out}.")


def _forget_failed_resume() -> None:
    """A resume that was refused leaves the run it named exactly as it was (and no new
    directory behind, when Hydra made one for it)."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir is None:  # mode=eval wrote no record
        return
    record = Path(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir)
    if record.name.startswith("resumed-"):
        shutil.rmtree(record, ignore_errors=True)
        for folder in (record.parent, record.parent.parent):  # .hydra/, then the run dir
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty


def show_tracebacks() -> bool:
    """Hydra's own switch, read as Hydra reads it: tracebacks for HYDRA_FULL_ERROR=1 only."""
    return os.environ.get("DLRUN_FULL_ERROR", os.environ.get("HYDRA_FULL_ERROR")) == "1"


def main() -> None:
    argv = with_resumed_overrides(sys.argv[1:])
    sys.argv[1:] = argv
    # errors must reach us rather than Hydra's own printer; the user's choice is kept aside
    # (in the environment, so that jobs in other processes read it too)
    users = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["DLRUN_FULL_ERROR"] = "1" if users == "1" else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        if "--version" in argv:
            print(version_line())
        elif {"--help", "-h"} & set(argv):
            print_help(argv)
        else:
            run()
    except BrokenPipeError:  # the reader went away (`dlrun --help | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:
        explained = None if show_tracebacks() else explain(error)
        if explained is None:
            raise
        print(f"dlrun: {explained.line}", file=sys.stderr)
        sys.exit(explained.code)
    finally:
        os.environ.pop("DLRUN_FULL_ERROR", None)
        if users is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = users


if __name__ == "__main__":
    main()
