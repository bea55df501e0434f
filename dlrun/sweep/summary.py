"""Compare the jobs of a sweep: one row per job, read back from the files each job left.

Everything comes from the job directories (`.hydra/overrides.yaml`, `.hydra/hydra.yaml`,
`summary.json`, `diagnosis.json`, `metrics.jsonl`), never from the launcher, so the
table is the same whichever launcher ran the jobs, and `dlrun-summary PATH` rebuilds it
for any earlier sweep. The best job is the one with the lowest validation loss as
returned by the job (the final epoch's, or the restored one's under early stopping):
the value the task function returned to the sweeper (summary.json "objective"), which
is what every sweeper minimizes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

from dlrun.overrides import parse_all
from dlrun.records import read_rows
from dlrun.report.files import write_json

SUMMARY_JSON = "sweep_summary.json"
SUMMARY_MD = "sweep_summary.md"
SPLITS = ("train", "val", "test")
BEST = "★"
NO_SUMMARY = (
    "no summary.json: the job ended before finishing (killed, out of memory) or is still running"
)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _verdict(job_dir: Path, summary: dict) -> str | None:
    """The diagnosis verdict, wherever the diagnosis put it (diagnosis.json, or inside summary.json)."""
    diagnosis = _read_json(job_dir / "diagnosis.json") or summary.get("diagnosis")
    if isinstance(diagnosis, dict) and isinstance(diagnosis.get("verdict"), str):
        return diagnosis["verdict"]
    verdict = summary.get("verdict")
    return verdict if isinstance(verdict, str) else None


def _job_number(job_dir: Path, fallback: int) -> int:
    hydra = _read_yaml(job_dir / ".hydra" / "hydra.yaml") or {}
    num = ((hydra.get("hydra") or {}).get("job") or {}).get("num")
    return num if isinstance(num, int) else fallback


def read_job(job_dir: Path, sweep_dir: Path, fallback_num: int = 0) -> dict:
    """One job's row: its overrides, final and best metrics, verdict, status and cost."""
    overrides = _read_yaml(job_dir / ".hydra" / "overrides.yaml") or []
    summary = _read_json(job_dir / "summary.json")
    rows = [row.to_json() for row in read_rows(job_dir / "metrics.jsonl")]
    final = summary.get("final") or (rows[-1] if rows else {})
    best = summary.get("best") or {}
    status, error = summary.get("status", "ok"), summary.get("error")
    if not summary:
        status = "failed"
        error = NO_SUMMARY + (f"; last epoch logged: {rows[-1]['epoch']}" if rows else "")
    elif status == "ok" and not _finite(final.get("val_loss")):
        status, error = "failed", f"final val_loss is {final.get('val_loss')}"
    epochs = summary.get("epochs") or len(rows)
    train_time = summary.get("train_time_s")
    return {
        "job": _job_number(job_dir, fallback_num),
        "dir": str(job_dir.relative_to(sweep_dir)),
        "overrides": [str(o) for o in overrides],
        "status": "ok" if status == "ok" else "failed",
        "error": None if status == "ok" else (error or f"status {status!r}"),
        "objective": summary.get("objective", final.get("val_loss")) if status == "ok" else None,
        "final": final,
        "best": best,
        "verdict": _verdict(job_dir, summary),
        "epochs": epochs,
        "wall_time_s": summary.get("wall_time_s"),
        "epoch_time_s": train_time / epochs if _finite(train_time) and epochs else None,
        "params": summary.get("params"),
    }


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Every job under a sweep directory: a folder whose `.hydra/` holds the job's overrides."""
    return sorted({p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")})


def _swept(jobs: list[dict]) -> tuple[list[str], list[str]]:
    """Override keys whose values differ between jobs, and the overrides all jobs share."""
    values: dict[str, set[str]] = {}
    job_keys = []
    for job in jobs:
        parsed = parse_all(job["overrides"], strict=False)
        job_keys.append({o.key for o in parsed})
        for override in parsed:
            values.setdefault(override.key, set()).add(override.text)
    swept = [k for k, v in values.items() if len(v) > 1 or any(k not in keys for keys in job_keys)]
    common = sorted(next(iter(v)) for k, v in values.items() if k not in swept)
    return swept, common


def summarize_sweep(sweep_dir: Path) -> dict:
    """Read every job of a sweep and pick the best one (lowest objective among finished jobs)."""
    sweep_dir = Path(sweep_dir).resolve()
    jobs = sorted(
        (read_job(d, sweep_dir, i) for i, d in enumerate(job_dirs(sweep_dir))),
        key=lambda j: (j["job"], j["dir"]),
    )
    ranked = [j for j in jobs if j["status"] == "ok" and _finite(j["objective"])]
    best = min(ranked, key=lambda j: j["objective"], default=None)
    swept, common = _swept(jobs)
    summary = {
        "sweep_dir": str(sweep_dir),
        "objective": "val_loss the job returned to the sweeper (lower is better)",
        "best_job": best["job"] if best else None,
        "best_overrides": best["overrides"] if best else None,
        "n_jobs": len(jobs),
        "n_failed": sum(j["status"] == "failed" for j in jobs),
        "swept": swept,
        "common_overrides": common,
        "jobs": jobs,
    }
    optuna = _read_yaml(sweep_dir / "optimization_results.yaml")
    if isinstance(optuna, dict):
        summary["optuna"] = optuna
    return summary


# --- rendering ---------------------------------------------------------------------


def _metric(jobs: list[dict]) -> str | None:
    for metric in ("acc", "mae", "r2"):
        if any(f"val_{metric}" in j["final"] for j in jobs):
            return metric
    return None


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "-"


def _seconds(value) -> str:
    if not _finite(value):
        return "-"
    return f"{value:.2f}s" if value < 10 else f"{value:.0f}s"


def _short(override: str) -> str:
    """`optim.lr=0.004430375245218269` reads as `optim.lr=0.00443` in the table."""
    for parsed in parse_all([override], strict=False):
        number = parsed.value
        if isinstance(number, float) and len(parsed.value_text) > 8 and math.isfinite(number):
            return f"{parsed.prefix}{parsed.key}={number:.3g}"
    return override


def _shown_overrides(job: dict, swept: list[str]) -> str:
    parsed = parse_all(job["overrides"], strict=False)
    shown = [o.text for o in parsed if o.key in swept] if swept else job["overrides"]
    return " ".join(_short(o) for o in shown) or "(defaults)"


def table_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and cells shared by the terminal table and the markdown file.

    A numeric cell holds the last epoch's value and, when an earlier epoch had the best
    val loss, that epoch's value in parentheses.
    """
    jobs, swept = summary["jobs"], summary["swept"]
    metric = _metric(jobs)
    keys = [f"{s}_loss" for s in SPLITS] + ([f"{s}_{metric}" for s in SPLITS] if metric else [])
    header = [
        "job",
        "overrides",
        *(k.replace("_", " ") for k in keys),
        "verdict",
        "s/epoch",
        "time",
    ]
    rows = []
    for job in jobs:
        mark = f" {BEST}" if job["job"] == summary["best_job"] and job["status"] == "ok" else ""
        cells = [f"{job['job']}{mark}", _shown_overrides(job, swept)]
        earlier_best = job["best"].get("epoch", job["final"].get("epoch")) != job["final"].get(
            "epoch"
        )
        for key in keys:
            final, best = job["final"].get(key), job["best"].get(key)
            cells.append(_num(final) + (f" ({_num(best)})" if earlier_best else ""))
        verdict = job["verdict"] or "-"
        if job["status"] == "failed":
            verdict = f"failed: {job['error']}"
        cells += [verdict, _seconds(job["epoch_time_s"]), _seconds(job["wall_time_s"])]
        rows.append(cells)
    return header, rows


def _caption(summary: dict) -> str:
    lines = [
        f"{BEST} best job: lowest val loss returned to the sweeper; "
        "cells: last epoch (best-val-loss epoch, when earlier)"
    ]
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
    return f"sweep {summary['sweep_dir']}: {summary['n_jobs']} jobs{failed}"


def rich_table(summary: dict):
    from rich.table import Table

    header, rows = table_rows(summary)
    table = Table(title=_title(summary), caption=_caption(summary), show_lines=False)
    widest = max((len(r[1]) for r in rows), default=10)
    for name in header:
        numeric = name not in ("job", "overrides", "verdict")
        table.add_column(
            name,
            justify="right" if numeric else "left",
            overflow="fold",
            min_width=min(widest, 40) if name == "overrides" else None,
            max_width=48 if name == "verdict" else None,
        )
    for job, cells in zip(summary["jobs"], rows):
        style = "red" if job["status"] == "failed" else ("bold green" if BEST in cells[0] else None)
        table.add_row(*cells, style=style)
    return table


def markdown(summary: dict) -> str:
    header, rows = table_rows(summary)

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    text = [f"# {_title(summary)}", "", line(header), line(["---"] * len(header))]
    text += [line(r) for r in rows]
    text += ["", *(f"{c}  " for c in _caption(summary).splitlines()), ""]
    return "\n".join(text)


def write_summary(summary: dict, sweep_dir: Path) -> None:
    write_json(Path(sweep_dir) / SUMMARY_JSON, summary)
    (Path(sweep_dir) / SUMMARY_MD).write_text(markdown(summary))


def print_summary(summary: dict) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough that rows stay on one line
        console = Console(width=max(console.width, 160))
    console.print(rich_table(summary))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """`dlrun-summary PATH`: rebuild (and rewrite) the comparison of an earlier sweep."""
    parser = argparse.ArgumentParser(
        prog="dlrun-summary",
        description="Rebuild the comparison table of a sweep directory "
        "(outputs/multirun/<date>/<time>) and rewrite its sweep_summary.json / .md.",
    )
    parser.add_argument("path", type=Path, help="a sweep directory")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the files alone")
    args = parser.parse_args(argv)
    if not args.path.is_dir() or not job_dirs(args.path):
        print(
            f"dlrun-summary: error: {args.path} holds no sweep jobs (no <job>/.hydra/overrides.yaml); "
            "pass a sweep directory such as outputs/multirun/<date>/<time>.",
            file=sys.stderr,
        )
        return 2
    summary = summarize_sweep(args.path)
    if not args.no_write:
        write_summary(summary, args.path)
    print_summary(summary)
    return 0


def console_main() -> None:
    sys.exit(main())
