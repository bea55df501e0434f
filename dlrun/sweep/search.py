"""The Optuna search loop behind `hparams_search=...`: ask a batch, launch it, tell the results.

Written over Optuna's ask-and-tell API rather than `study.optimize`, because the trials run
as Hydra jobs through whatever launcher is configured (basic, joblib, submitit, Ray,
stacked): each batch of `n_jobs` trials is one `launcher.launch` call, and trial number N is
job number N of the sweep directory. A job reports its epochs to its own trial and stops
when the pruner says so (`dlrun.sweep.trial`); the sweeper then records the trial as
PRUNED. A failed job is a FAIL; more than `max_failure_rate` of a batch failing ends the
search. No torch here.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dlrun.sweep.job import JobFailed, JobPruned
from dlrun.sweep.space import Space, build_space
from dlrun.sweep.study import fingerprint, make_pruner, open_study, write_results

State = optuna.trial.TrialState


@dataclass
class SearchSettings:
    """`hydra.sweeper` (how to search) and `hparams_search` (pruner, resume) in one place."""

    direction: str
    n_trials: int
    n_jobs: int
    max_failure_rate: float
    sampler: Any  # an Optuna sampler (or its config, with `_target_`); None: Optuna's default
    params: dict | None
    pruner: str
    resume: str | None


def _outcome(result: JobReturn) -> tuple[State, float | None, str | None]:
    """How a job ended, for its trial: (state, value, reason)."""
    if result.status != JobStatus.COMPLETED:
        # what the job raised; read from the field, since the public `return_value` getter
        # re-raises it after writing "Error executing job ..." for every pruned trial
        error = result._return_value
        state = State.PRUNED if isinstance(error, JobPruned) else State.FAIL
        return state, None, str(error)
    value = float(result.return_value)
    if not math.isfinite(value):
        return State.FAIL, None, f"the job returned {value}"
    return State.COMPLETE, value, None


def run_search(settings: SearchSettings, config: DictConfig, launcher, validate,
               arguments: list[str]) -> optuna.Study:
    """Run `settings.n_trials` trials into `hydra.sweep.dir`; return the study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep_dir = Path(config.hydra.sweep.dir)
    space = build_space(settings.params, arguments)
    identity = fingerprint(settings.direction, space.distributions, space.fixed)
    make_pruner(settings.pruner, 1)  # a wrong name fails now, not in every job
    sampler = settings.sampler  # Hydra instantiated it with the sweeper, unless given as a dict
    sampler = instantiate(sampler) if isinstance(sampler, dict) else sampler
    study = open_study(sweep_dir, settings.resume, sampler, identity)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    started, asked = time.perf_counter(), 0
    try:
        while asked < settings.n_trials:
            batch = min(settings.n_jobs, settings.n_trials - asked)
            _run_batch(study, space, [study.ask(space.distributions) for _ in range(batch)],
                       launcher, validate, settings.max_failure_rate)
            asked += batch
    finally:  # a stopped search keeps its results file too
        results = write_results(study, sweep_dir)
    _say_done(results, time.perf_counter() - started, sweep_dir)
    return study


def _run_batch(study: optuna.Study, space: Space, trials: list[optuna.Trial], launcher, validate,
               max_failure_rate: float) -> None:
    overrides = [space.overrides(t.params) for t in trials]
    try:
        validate(overrides)  # a batch that cannot be composed fails here, with Hydra's message
    except Exception:
        for trial in trials:
            study.tell(trial, state=State.FAIL)
        raise
    results = launcher.launch(overrides, initial_job_idx=trials[0].number)  # job N = trial N
    failures = []
    for trial, result in zip(trials, results):
        state, value, reason = _outcome(result)
        study.tell(trial, value if state == State.COMPLETE else None, state=state)
        if state == State.FAIL:
            failures.append(reason)
    if failures and len(failures) / len(trials) > max_failure_rate:
        raise JobFailed(failures[-1])


def _say_done(results: dict, seconds: float, sweep_dir: Path) -> None:
    best = (f"best val loss {results['best_value']:.4f} (trial {results['best_trial']}: "
            f"{results['best_params']})" if "best_value" in results else "no trial finished")
    print(f"dlrun: search done in {seconds:.0f}s: {results['n_trials']} trials, "
          f"{results['n_pruned']} pruned, {results['n_fail']} failed; {best}; "
          f"continue with hparams_search.resume={sweep_dir}", file=sys.stderr, flush=True)
