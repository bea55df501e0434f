"""One job of a multirun: a failure is written into the job's directory, and the sweep goes on.

Hydra's basic sweeper re-raises the first failed job after its batch, which would end
the sweep with a traceback and skip the sweep summary. So inside a multirun the task
function catches the job's error (or notices a run that stopped on a non-finite loss),
records `status: "failed"` and a one-line `error` in the job's summary.json, and then:

- returns NaN to a sweeper that only collects results (the basic sweeper);
- raises `JobPruned` when dlrun's Optuna search pruned the job (`dlrun.sweep.trial`);
- raises `JobFailed` to a sweeper with a failure budget (`hydra.sweeper.max_failure_rate`,
  e.g. Optuna), which records the trial as failed and stops only past that budget.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun.errors import RunFailed, UserError, find_cause
from dlrun.records import Summary, best_row, read_rows, read_summary
from dlrun.report.files import write_json


class JobFailed(RuntimeError):
    """A sweep job that did not finish; its message is the one-line reason."""


class JobPruned(RuntimeError):
    """A search's pruner stopped this job early (its summary.json says `status: pruned`)."""


def _rank() -> int:
    """This process's rank in a data-parallel job (set once the job has joined its group)."""
    return int(os.environ.get("RANK", "0"))


def one_line(error: BaseException) -> str:
    """The reason in one line: dlrun's own message, or the exception's type and message."""
    explained = find_cause(error, (UserError, RunFailed))
    text = " ".join(str(explained or error).split()) or "(no message)"
    reason = text if explained is not None else f"{type(error).__name__}: {text}"
    return reason if len(reason) <= 240 else reason[:237] + "..."


def record_failure(
    run_dir: Path, reason: str, wall_time_s: float, trace: str | None = None
) -> None:
    """Mark the job failed in summary.json, keeping what the run itself wrote there."""
    summary = read_summary(run_dir)
    if summary is None or summary.status != "failed":  # an earlier, finished attempt's is stale
        rows = read_rows(run_dir / "metrics.jsonl")
        summary = Summary(run_dir=str(run_dir), final=rows[-1] if rows else None,
                          best=best_row(rows), epochs=len(rows), wall_time_s=wall_time_s)
    summary.status, summary.error = "failed", summary.error or reason
    if trace:
        summary.traceback = trace
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "summary.json", summary.to_json())


def _fail(reason: str) -> float:
    hydra = HydraConfig.get()
    print(f"dlrun: job {hydra.job.num} failed: {reason}", file=sys.stderr, flush=True)
    if OmegaConf.select(hydra, "sweeper.max_failure_rate") is not None:
        raise JobFailed(reason)
    return math.nan


def run_sweep_job(run_job: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run one multirun job; on failure record it and hand the sweeper NaN or `JobFailed`."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    started = time.perf_counter()
    try:
        value = run_job(cfg)
    except Exception as error:  # any job error is this job's failure, not the sweep's
        if _rank() > 0:
            raise
        reason = one_line(error)
        trace = None if find_cause(error, (UserError, RunFailed)) else traceback.format_exc()
        record_failure(run_dir, reason, time.perf_counter() - started, trace)
        return _fail(reason)
    if _rank() > 0:  # a data-parallel job's other ranks (Slurm tasks): rank 0 writes the files
        return value
    summary = read_summary(run_dir)
    if summary is not None and summary.status == "pruned":  # the search's pruner stopped it
        print(f"dlrun: job {HydraConfig.get().job.num} {summary.error}", file=sys.stderr, flush=True)
        raise JobPruned(summary.error)
    if (summary is not None and summary.status == "failed") or not math.isfinite(value):
        reason = (summary and summary.error) or f"the job returned {value} as its val loss"
        record_failure(run_dir, reason, time.perf_counter() - started)
        return _fail(reason)
    if summary is not None:  # what the sweeper got, which the sweep summary ranks jobs by
        summary.objective = value
        write_json(run_dir / "summary.json", summary.to_json())
    return value
