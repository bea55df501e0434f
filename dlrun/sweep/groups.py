"""Rows of a comparison: jobs that differ only by `trainer.seed` become one row with the
mean ± std over their seeds and their count n; every other job is a row of its own.

A row is a plain dict (it goes to JSON and CSV as it is): its `name`, the `dirs` of its
jobs, the `overrides` that tell it apart from the other rows, `n`, the `seeds`, and for
each number (objective, final and best losses and metrics, wall time) its mean and, when
n > 1, its sample standard deviation under `<key>_std`.
"""

from __future__ import annotations

import statistics
from collections import Counter

from dlrun.overrides import parse_all
from dlrun.records.rows import finite

SEED = "trainer.seed"
SPLITS = ("train", "val", "test")


def metric_name(jobs: list[dict]) -> str | None:
    """The task metric the jobs report (accuracy, mean absolute error, ...), if any."""
    for metric in ("exact", "acc", "mae", "r2"):
        if any(f"val_{metric}" in j["final"] for j in jobs):
            return metric
    return None


def differing(jobs: list[dict], ignore: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Override keys whose values differ between jobs (or that some jobs lack), and the
    overrides every job shares."""
    values: dict[str, set[str]] = {}
    job_keys = []
    for job in jobs:
        parsed = [o for o in parse_all(job["overrides"], strict=False) if o.key not in ignore]
        job_keys.append({o.key for o in parsed})
        for override in parsed:
            values.setdefault(override.key, set()).add(override.text)
    swept = [k for k, v in values.items() if len(v) > 1 or any(k not in keys for keys in job_keys)]
    common = sorted(next(iter(v)) for k, v in values.items() if k not in swept)
    return swept, common


def _shown(job: dict, keys: list[str]) -> list[str]:
    return [o.text for o in parse_all(job["overrides"], strict=False) if o.key in keys]


def numbers(job: dict, metric: str | None) -> dict[str, float | None]:
    """The numbers a row shows for one job: objective, final and best-epoch values, time."""
    final, best = job["final"], job["best"]
    out = {"objective": job["objective"]}
    names = ["loss"] + ([metric] if metric else [])
    for name in names:
        for split in SPLITS:
            out[f"final_{split}_{name}"] = final.get(f"{split}_{name}")
        out[f"best_val_{name}"] = best.get(f"val_{name}")
        out[f"best_test_{name}"] = best.get(f"test_{name}")
    out["best_epoch"] = best.get("epoch")
    out["epochs"] = job.get("epochs")
    out["wall_time_s"] = job.get("wall_time_s")
    return out


def _verdicts(jobs: list[dict]) -> str:
    said = Counter("failed" if j["status"] == "failed" else (j["verdict"] or "-") for j in jobs)
    if len(said) == 1:
        return next(iter(said))
    return ", ".join(f"{v} ×{n}" for v, n in said.most_common())


def group_rows(jobs: list[dict], names: list[str]) -> list[dict]:
    """One row per set of jobs that differ only by `trainer.seed` (failed seeds counted,
    not averaged), in the order of each set's first job; `names[i]` names job i."""
    swept, _ = differing(jobs, ignore=(SEED,))
    metric = metric_name(jobs)
    sets: dict[tuple[str, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        sets.setdefault(tuple(_shown(job, swept)), []).append(i)
    rows = []
    for key, members in sets.items():
        done = [jobs[i] for i in members if jobs[i]["status"] == "ok"]
        row = {
            "name": _name([names[i] for i in members]),
            "dirs": [jobs[i]["dir"] for i in members],
            "overrides": list(key),
            "n": len(members),
            "n_failed": len(members) - len(done),
            "seeds": [_seed(jobs[i]) for i in members],
            "status": "ok" if done else "failed",
            "error": None if done else jobs[members[0]]["error"],
            "verdict": _verdicts([jobs[i] for i in members]),
        }
        columns = [numbers(job, metric) for job in done]
        for name in numbers(jobs[members[0]], metric):
            values = [c[name] for c in columns if finite(c[name])]
            row[name] = (values[0] if len(values) == 1 else statistics.fmean(values)) if values else None
            if len(members) > 1:
                row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    return rows


def _name(names: list[str]) -> str:
    """Job numbers listed (`0,2,4`, `sweep/0,2,4` for jobs of one sweep); other directories
    as the first one and how many more."""
    parents = {n.rpartition("/")[0] for n in names}
    if len(parents) == 1 and all(n.rpartition("/")[2].isdigit() for n in names):
        parent = parents.pop()
        return (parent + "/" if parent else "") + ",".join(n.rpartition("/")[2] for n in names)
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")


def _seed(job: dict):
    found = [o.value for o in parse_all(job["overrides"], strict=False) if o.key == SEED]
    return found[-1] if found else None


def best_row_index(rows: list[dict]) -> int | None:
    """The row with the lowest (mean) objective among rows with at least one finished job."""
    ranked = [i for i, r in enumerate(rows) if r["status"] == "ok" and finite(r["objective"])]
    return min(ranked, key=lambda i: rows[i]["objective"], default=None)
