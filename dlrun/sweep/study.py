"""An Optuna study kept inside its sweep directory, one study per sweep.

The study lives in `<sweep dir>/optuna.journal` (Optuna's journal file: plain appends under
a file lock, so the sweeper and every job process, on any launcher that shares the
filesystem, read and write it without a database server or SQLAlchemy) and is named after
the sweep directory. A new sweep directory is a new study; continuing one is explicit
(`hparams_search.resume=<sweep dir>`) and refused when the search space or the objective
(direction and every fixed override) differs from the one the study was made with. No torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import optuna
import yaml
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from dlrun.errors import UserError
from dlrun.overrides import parse_all

STUDY_FILE = "optuna.journal"
RESULTS_FILE = "optimization_results.yaml"  # what the sweep summary's caption reads
# fixed overrides that change how a trial is shown or run, not what it minimizes
_NOT_OBJECTIVE = ("hydra", "hparams_search", "trainer.progress", "diagnose", "trainer.checkpoint")


def storage(sweep_dir: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(Path(sweep_dir) / STUDY_FILE)))


def fingerprint(direction: str, space: Mapping[str, BaseDistribution], fixed: list[str]) -> dict:
    """What makes two searches the same search: what is minimized, over which space."""
    task = sorted(o.text for o in parse_all(fixed, strict=False)
                  if not any(o.under(k) for k in _NOT_OBJECTIVE))
    return {"objective": {"direction": direction, "overrides": task},
            "space": {k: json.loads(distribution_to_json(d)) for k, d in sorted(space.items())}}


def _difference(saved: dict, now: dict) -> str:
    """The first way the search typed now differs from the stored one, in words."""
    before, after = saved["objective"], now["objective"]
    if before["direction"] != after["direction"]:
        return f"it was to {before['direction']}, not {after['direction']}"
    if before["overrides"] != after["overrides"]:
        gone = sorted(set(before["overrides"]) - set(after["overrides"]))
        new = sorted(set(after["overrides"]) - set(before["overrides"]))
        return (f"its trials ran with {' '.join(gone) or '(no such override)'}, "
                f"this one with {' '.join(new) or '(no such override)'}")
    keys = sorted(set(saved["space"]) | set(now["space"]))
    changed = [k for k in keys if saved["space"].get(k) != now["space"].get(k)]
    return f"its search space differs in {', '.join(changed)}"


def open_study(sweep_dir: Path, resume: str | None, sampler: optuna.samplers.BaseSampler,
               identity: dict) -> optuna.Study:
    """A fresh study in a fresh sweep directory, or the one `resume` names, checked against
    `identity` (the fingerprint of the search typed now)."""
    sweep_dir = Path(sweep_dir)
    direction = identity["objective"]["direction"]
    if resume is None:
        if (sweep_dir / STUDY_FILE).exists():
            raise UserError(f"{sweep_dir} already holds a search; continue it with "
                            f"hparams_search.resume={sweep_dir}, or pick another hydra.sweep.dir.")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(study_name=str(sweep_dir), storage=storage(sweep_dir),
                                    sampler=sampler, direction=direction)
        study.set_user_attr("search", identity)
        return study
    if Path(resume).resolve() != sweep_dir.resolve():
        raise UserError(f"hparams_search.resume={resume} continues the search in that directory; "
                        f"drop hydra.sweep.dir={sweep_dir}.")
    if not (sweep_dir / STUDY_FILE).is_file():
        raise UserError(f"hparams_search.resume={resume}: no search there (no {STUDY_FILE}); "
                        "pass the directory of an earlier `dlrun -m hparams_search=...`.")
    study = optuna.load_study(study_name=None, storage=storage(sweep_dir), sampler=sampler)
    saved = study.user_attrs.get("search")
    if saved is not None and saved != identity:
        raise UserError(f"hparams_search.resume={resume}: not the same search "
                        f"({_difference(saved, identity)}); start a new search without "
                        "hparams_search.resume, or type the earlier one's overrides.")
    return study


def job_trial(sweep_dir: Path, number: int, pruner: optuna.pruners.BasePruner) -> optuna.Trial:
    """Inside a sweep job: its trial (trial number = job number) in the sweep's study."""
    store = storage(sweep_dir)
    study = optuna.load_study(study_name=None, storage=store, pruner=pruner)
    study_id = store.get_study_id_from_name(study.study_name)
    return optuna.Trial(study, store.get_trial_id_from_study_id_trial_number(study_id, number))


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """`hparams_search.pruner`: median (stop a trial whose val loss is worse than the median
    of earlier trials at the same epoch, from its first epoch on, once two have finished),
    hyperband (successive halving over 1..trainer.epochs epochs), or none."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"hparams_search.pruner={name}: choose median, hyperband or none.")


def write_results(study: optuna.Study, sweep_dir: Path) -> dict:
    """optimization_results.yaml: the study's best and how its trials ended."""
    states = [t.state.name.lower() for t in study.trials]
    results: dict = {"name": study.study_name, "storage": str(Path(sweep_dir) / STUDY_FILE),
                     "n_trials": len(states),
                     **{f"n_{s}": states.count(s) for s in ("complete", "pruned", "fail")}}
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        results["best_value"] = float(study.best_value)
        results["best_params"] = dict(study.best_params)
        results["best_trial"] = study.best_trial.number
    (Path(sweep_dir) / RESULTS_FILE).write_text(yaml.safe_dump(results, sort_keys=False))
    return results
