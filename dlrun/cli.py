"""The `dlrun` command: Hydra composes the config; this file hands it to the trainer.

torch is imported only inside the job, so `dlrun --help` and `--cfg job` answer
without paying for it.
"""

from __future__ import annotations

import atexit
import difflib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from dlrun.config import check_resume_dir
from dlrun.errors import RunFailed, UserError, find_cause
from dlrun.overrides import split_argv, with_resumed_overrides
from dlrun.paths import config_dir
from dlrun.schema import register_schemas
from dlrun.sweep.job import JobFailed, run_sweep_job


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


def _hydra_subdir(resume: str | None, stamp: str) -> str:
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

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # any failure is recorded in the job's summary.json and the sweep goes on
        return run_sweep_job(run_job, cfg)
    try:
        return run_job(cfg)
    except Exception as error:  # instantiate() wraps errors raised while building
        failure = find_cause(error, (UserError, RunFailed))
        if failure is None:
            raise
    kind = "error" if isinstance(failure, UserError) else "run failed"
    print(f"dlrun: {kind}: {failure}", file=sys.stderr)
    if isinstance(failure, UserError) and cfg.trainer.resume is not None:
        _forget_failed_resume()
    sys.exit(2 if isinstance(failure, UserError) else 3)


def _forget_failed_resume() -> None:
    """A resume that was refused leaves the run it named exactly as it was."""
    hydra_cfg = HydraConfig.get()
    record = Path(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir)
    if record.name.startswith("resumed-"):
        shutil.rmtree(record, ignore_errors=True)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in Path(config_dir(), group).glob("*.yaml"))


def _did_you_mean(error: BaseException) -> str:
    """A close name for an unknown group option or key, when there is one."""
    text = str(error)
    missing = re.search(r"Could not find '([\w/]+)/(\w+)'", text)
    if missing:
        group, option = missing.groups()
        close = difflib.get_close_matches(option, _options(group), n=1)
        return f"did you mean {group}={close[0]}?" if close else f"choose from: {', '.join(_options(group))}"
    key_error = find_cause(error, (ConfigKeyError, ConfigAttributeError))
    if key_error is not None and key_error.parent_node is not None and key_error.key is not None:
        keys = [str(k) for k in key_error.parent_node.keys()]
        close = difflib.get_close_matches(str(key_error.key), keys, n=1)
        if close:
            parent = key_error.full_key.rpartition(".")[0]
            return f"did you mean {parent + '.' if parent else ''}{close[0]}?"
    return ""


def report_error(error: BaseException) -> int:
    """Say what went wrong in a line or two, without a traceback; return the exit code.

    Anything that is not a user error (a bug in dlrun) is re-raised with its traceback.
    """
    user = find_cause(error, UserError)
    if user is not None:
        print(f"dlrun: error: {user}", file=sys.stderr)
        return 2
    if isinstance(error, (CompactHydraException, OmegaConfBaseException)):
        lines = [line for line in str(error).splitlines() if line.strip()]
        if isinstance(error.__cause__, OmegaConfBaseException):
            lines += [line for line in str(error.__cause__).splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith(("Config search path", "\tprovider"))]
        hint = _did_you_mean(error)
        print("dlrun: error: " + "\n  ".join(lines) + (f"\n  {hint}" if hint else ""), file=sys.stderr)
        return 2
    if isinstance(error, OSError) and error.filename:
        print(
            f"dlrun: error: cannot write {error.filename} ({error.strerror}); run from a writable "
            "directory or pick one with hydra.run.dir=... (hydra.sweep.dir=... for -m).",
            file=sys.stderr,
        )
        return 2
    failed = find_cause(error, JobFailed)
    if failed is not None:  # Optuna stopped: a batch failed beyond hydra.sweeper.max_failure_rate
        print(f"dlrun: search stopped: too many failed trials (hydra.sweeper.max_failure_rate); "
              f"the last: {failed}; `dlrun-summary <sweep dir>` lists every job.", file=sys.stderr)
        return 3
    raise error


def print_help(overrides: list[str]) -> None:
    """`dlrun --help`, answered without Hydra's own help, whose group listing re-reads the
    whole config store once per option (seconds). The groups are the config folders."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    text = cfg.hydra.help
    groups = sorted(p.name for p in Path(config_dir()).iterdir() if p.is_dir() and p.name != "hydra")
    with open_dict(cfg):
        del cfg["hydra"]
    print(text.header)
    print("== Config groups ==")
    print("Pick one option per group with group=option (reg takes a list: reg=[l2,dropout]).\n")
    for group in groups:
        print(f"{group}: {', '.join(_options(group))}")
    print("\n== Composed config (override any key with key=value) ==\n")
    print(OmegaConf.to_yaml(cfg))
    print(text.footer)


def main() -> None:
    sys.argv[1:] = with_resumed_overrides(sys.argv[1:])
    show_tracebacks = "HYDRA_FULL_ERROR" in os.environ
    os.environ["HYDRA_FULL_ERROR"] = "1"  # errors reach us instead of Hydra's traceback printer
    try:
        if {"--help", "-h"} & set(sys.argv[1:]):
            print_help(split_argv(sys.argv[1:])[1])
        else:
            run()
    except BrokenPipeError:  # the reader went away (`dlrun --help | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as error:
        if show_tracebacks:
            raise
        sys.exit(report_error(error))
    finally:
        if not show_tracebacks:
            os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    main()
