"""`dlrun-summary PATH...`: one table over any runs: run directories, sweep directories, globs.

One sweep directory is summarized as its own sweep (and its sweep_summary.json / .md /
sweep.png rewritten unless --no-write). Anything else is a comparison: every run found
under the paths is named by its directory (relative to what the paths share) and by the
overrides that differ between the runs; runs that differ only by `trainer.seed` share a
row with mean ± std. `--csv FILE` and `--json FILE` export the rows the table shows.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from dlrun.sweep import table
from dlrun.sweep.groups import best_row_index, differing, group_rows
from dlrun.sweep.summary import (
    SUMMARY_JSON,
    job_dirs,
    print_summary,
    read_job,
    summarize_sweep,
    write_summary,
)


def _error(message: str) -> int:
    print(f"dlrun-summary: error: {message}", file=sys.stderr)
    return 2


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The paths that hold runs, globs expanded (for shells that did not), in order, once
    each; and what names no run. A glob's matches that hold no run (sweep_summary.json,
    tb/) are passed over; a glob that matches no run at all is reported."""
    found: list[Path] = []
    missing: list[str] = []
    for text in paths:
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        runs = [Path(m).resolve() for m in matches if Path(m).is_dir() and job_dirs(Path(m))]
        if not runs:
            missing.append(text)
        found += [path for path in runs if path not in found]
    return found, missing


def is_sweep(path: Path) -> bool:
    """A multirun's directory (Hydra's multirun.yaml, or our summary), not a folder of runs:
    only there does dlrun-summary write files."""
    return (path / "multirun.yaml").is_file() or (path / SUMMARY_JSON).is_file()


def compare(paths: list[Path]) -> dict:
    """Rows over every run under `paths`, named by directory and differing overrides."""
    dirs = sorted({d for p in paths for d in job_dirs(p)})
    root = Path(os.path.commonpath([str(d) for d in dirs]))
    if root in dirs:  # one run: name it by its own folder
        root = root.parent
    jobs = [read_job(d, root, i) for i, d in enumerate(dirs)]
    rows = group_rows(jobs, [j["dir"] for j in jobs])  # a sweep's jobs: <sweep>/<number>
    swept, common = differing(jobs)
    return {"root": str(root), "jobs": jobs, "rows": rows, "best_row": best_row_index(rows),
            "swept": swept, "common_overrides": common}


def _caption(found: dict) -> str:
    lines = [f"{table.BEST} best: lowest (mean) objective, the val loss the run returned; "
             "cells: the last epoch, but best val loss and its epoch"]
    if any(r["n"] > 1 for r in found["rows"]):
        lines.append("runs that differ only by trainer.seed share a row: mean ± std over n")
    if found["common_overrides"]:
        lines.append("all runs: " + " ".join(found["common_overrides"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dlrun-summary",
        description="Compare runs: run directories, sweep directories (outputs/multirun/"
        "<date>/<time>) or globs. One sweep directory also rewrites its sweep_summary.json / "
        ".md and sweep.png.",
    )
    parser.add_argument("paths", nargs="+", help="run or sweep directories, or globs")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; leave a sweep's summary files alone")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows as CSV")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    paths, empty = expand(args.paths)
    if empty:
        return _error(f"{empty[0]} holds no sweep jobs or runs (no <run>/.hydra/overrides.yaml); pass run or "
                      "sweep directories such as outputs/runs/<date>/<time> or "
                      "outputs/multirun/<date>/<time>.")
    one_sweep = len(paths) == 1 and is_sweep(paths[0])
    if one_sweep:
        found = summarize_sweep(paths[0])
        if not args.no_write:
            write_summary(found, paths[0])
        print_summary(found)
    else:
        found = compare(paths)
        title = f"{len(found['jobs'])} runs under {found['root']}"
        table.print_table(lambda width: table.rich_table(
            found["rows"], found["jobs"], found["best_row"], title, _caption(found), width=width))
    try:
        if args.csv:
            table.write_csv(found["rows"], args.csv)
        if args.json:
            table.write_rows_json(found["rows"], args.json)
    except OSError as error:
        return _error(f"cannot write {error.filename} ({error.strerror}); pick a writable path.")
    return 0
