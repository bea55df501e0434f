"""Compare the jobs of a sweep: one row per job (per set of seeds), read back from the files
each job left.

Everything comes from the job directories (`.hydra/overrides.yaml`, `.hydra/hydra.yaml`,
summary.json, diagnosis.json, metrics.jsonl, read through dlrun.records), never from the
launcher, so the table is the same whichever launcher ran the jobs, and `dlrun-summary
PATH` rebuilds it for any earlier sweep. The best job is the one with the lowest
validation loss as returned by the job (the final epoch's, or the restored one's under
early stopping): the value the task function returned to the sweeper (summary.json
"objective"), which is what every sweeper minimizes. Jobs that differ only by
`trainer.seed` share one row with the mean ± std over their seeds (dlrun.sweep.groups).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dlrun.overrides import parse_all
from dlrun.records import read_diagnosis, read_rows, read_summary
from dlrun.records.rows import finite
from dlrun.report.files import write_json
from dlrun.sweep import table
from dlrun.sweep.groups import best_row_index, differing, group_rows

SUMMARY_JSON = "sweep_summary.json"
SUMMARY_MD = "sweep_summary.md"
BEST = table.BEST
NO_SUMMARY = (
    "no summary.json: the job ended before finishing (killed, out of memory) or is still running"
)
STATUSES = ("ok", "failed", "pruned")


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _job_number(job_dir: Path, fallback: int) -> int:
    hydra = _read_yaml(job_dir / ".hydra" / "hydra.yaml") or {}
    num = ((hydra.get("hydra") or {}).get("job") or {}).get("num")
    return num if isinstance(num, int) else fallback


def read_job(job_dir: Path, root: Path, fallback_num: int = 0) -> dict:
    """One job's record: its overrides, final and best metrics, verdict, status and cost;
    `dir` is relative to `root` (the sweep directory, or what the compared paths share)."""
    overrides = _read_yaml(job_dir / ".hydra" / "overrides.yaml") or []
    summary = read_summary(job_dir)
    rows = read_rows(job_dir / "metrics.jsonl")
    final = summary.final if summary and summary.final else (rows[-1] if rows else None)
    final_json = final.to_json() if final else {}
    status, error = (summary.status, summary.error) if summary else ("failed", None)
    if summary is None:
        error = NO_SUMMARY + (f"; last epoch logged: {rows[-1].epoch}" if rows else "")
    elif status == "ok" and not finite(final_json.get("val_loss")):
        status, error = "failed", f"final val_loss is {final_json.get('val_loss')}"
    diagnosis = read_diagnosis(job_dir)
    epochs = (summary.epochs if summary else None) or len(rows)
    train_time = summary.train_time_s if summary else None
    objective = summary.objective if summary and summary.objective is not None else \
        final_json.get("val_loss")
    status = status if status in STATUSES else "failed"
    return {
        "job": _job_number(job_dir, fallback_num),
        "dir": str(job_dir.relative_to(root)) if job_dir != root else job_dir.name,
        "overrides": [str(o) for o in overrides],
        "status": status,
        "error": None if status == "ok" else (error or f"status {status!r}"),
        "objective": objective if status == "ok" else None,
        "final": final_json,
        "best": summary.best.to_json() if summary and summary.best else {},
        "verdict": str(diagnosis.verdict) if diagnosis else (summary.verdict if summary else None),
        "epochs": epochs,
        "wall_time_s": summary.wall_time_s if summary else None,
        "epoch_time_s": train_time / epochs if finite(train_time) and epochs else None,
        "params": summary.params if summary else None,
    }


def job_dirs(path: Path) -> list[Path]:
    """Every run under `path` (a sweep, a run, a folder of runs): a folder whose `.hydra/`
    holds the run's overrides."""
    return sorted({p.parent.parent for p in Path(path).glob("**/.hydra/overrides.yaml")})


def swept_values(jobs: list[dict], keys: list[str]) -> dict[str, list]:
    """Each swept key's value in each job (None where the job did not set it), for plots."""
    values: dict[str, list] = {k: [] for k in keys}
    for job in jobs:
        given = {o.key: o.value for o in parse_all(job["overrides"], strict=False)}
        for k in keys:
            values[k].append(given.get(k))
    return values


def summarize_sweep(sweep_dir: Path) -> dict:
    """Read every job of a sweep, group its seeds and pick the best job and the best row."""
    sweep_dir = Path(sweep_dir).resolve()
    jobs = sorted(
        (read_job(d, sweep_dir, i) for i, d in enumerate(job_dirs(sweep_dir))),
        key=lambda j: (j["job"], j["dir"]),
    )
    ranked = [j for j in jobs if j["status"] == "ok" and finite(j["objective"])]
    best = min(ranked, key=lambda j: j["objective"], default=None)
    swept, common = differing(jobs)
    rows = group_rows(jobs, [str(j["job"]) for j in jobs])
    summary = {
        "sweep_dir": str(sweep_dir),
        "objective": "val_loss the job returned to the sweeper (lower is better)",
        "best_job": best["job"] if best else None,
        "best_overrides": best["overrides"] if best else None,
        "n_jobs": len(jobs),
        "n_failed": sum(j["status"] == "failed" for j in jobs),
        "n_pruned": sum(j["status"] == "pruned" for j in jobs),
        "swept": swept,
        "common_overrides": common,
        "jobs": jobs,
        "rows": rows,
        "best_row": best_row_index(rows),
    }
    optuna = _read_yaml(sweep_dir / "optimization_results.yaml")
    if isinstance(optuna, dict):
        summary["optuna"] = optuna
    return summary


# --- rendering ---------------------------------------------------------------------


def _caption(summary: dict) -> str:
    lines = [
        f"{BEST} best: lowest val loss returned to the sweeper (mean over seeds when "
        "grouped)"
    ]
    if any(r["n"] > 1 for r in summary["rows"]):
        lines.append("jobs that differ only by trainer.seed share a row: mean ± std over n")
    if summary["common_overrides"]:
        lines.append("all jobs: " + " ".join(summary["common_overrides"]))
    if "optuna" in summary and "best_value" in summary["optuna"]:
        optuna = summary["optuna"]
        lines.append(
            f"optuna study best: {optuna['best_value']:.4f} with {optuna.get('best_params')}"
        )
    return "\n".join(lines)


def _title(summary: dict) -> str:
    failed = f", {summary['n_failed']} failed" if summary["n_failed"] else ""
    pruned = f", {summary['n_pruned']} pruned" if summary.get("n_pruned") else ""
    return f"sweep {summary['sweep_dir']}: {summary['n_jobs']} jobs{failed}{pruned}"


def rich_table(summary: dict, width: int | None = None):
    return table.rich_table(summary["rows"], summary["jobs"], summary["best_row"],
                            _title(summary), _caption(summary), name_header="job", width=width)


def markdown(summary: dict) -> str:
    return table.markdown(summary["rows"], summary["jobs"], summary["best_row"],
                          _title(summary), _caption(summary), name_header="job")


def write_summary(summary: dict, sweep_dir: Path) -> None:
    """sweep_summary.json and .md, and sweep.png (a picture that fails only warns)."""
    from dlrun.report.pictures import save_sweep

    write_json(Path(sweep_dir) / SUMMARY_JSON, summary)
    (Path(sweep_dir) / SUMMARY_MD).write_text(markdown(summary))
    jobs = summary["jobs"]
    best = next((i for i, j in enumerate(jobs) if j["job"] == summary["best_job"]), None)
    save_sweep(sweep_dir, jobs, swept_values(jobs, summary["swept"]), best)


def print_summary(summary: dict) -> None:
    table.print_table(lambda width: rich_table(summary, width))


def main(argv: list[str] | None = None) -> int:
    """`dlrun-summary PATH...` (dlrun.sweep.compare)."""
    from dlrun.sweep.compare import main as compare

    return compare(argv)


def console_main() -> None:
    import sys

    sys.exit(main())
