"""The comparison table, drawn three ways from the same rows (dlrun.sweep.groups): a rich
table that fits the terminal, Markdown for sweep_summary.md, and CSV/JSON for other tools.

On a terminal the table wraps its text columns (name, overrides, verdict) to the width
there is; a grouped number shows its mean over its ± std on a second line. Piped, it takes
the width it needs, so no column is ever cut off.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from dlrun.overrides import parse_all
from dlrun.records.rows import clean, finite
from dlrun.sweep.groups import metric_name

BEST = "★"
MIN_WIDTH = {"run": 8, "job": 4, "overrides": 18, "verdict": 12}  # the text columns


def _num(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if finite(value) else "-"


def _seconds(value) -> str:
    if not finite(value):
        return "-"
    return f"{value:.2f}s" if value < 10 else f"{value:.0f}s"


def short(override: str) -> str:
    """`optim.lr=0.004430375245218269` reads as `optim.lr=0.00443` in the table."""
    for parsed in parse_all([override], strict=False):
        number = parsed.value
        if isinstance(number, float) and len(parsed.value_text) > 8 and math.isfinite(number):
            return f"{parsed.prefix}{parsed.key}={number:.3g}"
    return override


def columns(rows: list[dict], jobs: list[dict]) -> list[tuple[str, str]]:
    """(header, row key) of every numeric column: the objective, final and best losses, the
    task metric, wall time."""
    metric = metric_name(jobs)
    out = [("objective", "objective"), ("train\nloss", "final_train_loss"),
           ("test\nloss", "final_test_loss"), ("best val\nloss", "best_val_loss"),
           ("best\nepoch", "best_epoch")]
    if metric:
        out += [(f"val\n{metric}", f"final_val_{metric}"), (f"test\n{metric}", f"final_test_{metric}")]
    return out + [("time", "wall_time_s")]


def _epoch(value) -> str:
    return f"{value:.0f}" if finite(value) else "-"


SHOW = {"wall_time_s": _seconds, "best_epoch": _epoch}


def _cell(row: dict, key: str, sep: str) -> str:
    show = SHOW.get(key, _num)
    text = show(row.get(key))
    std = row.get(f"{key}_std") if key != "best_epoch" else None
    return text + (f"{sep}± {show(std)}" if finite(std) else "")


def cells(rows: list[dict], jobs: list[dict], best: int | None,
          sep: str = " ") -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by the terminal and Markdown tables."""
    grouped = any(r["n"] > 1 for r in rows)
    numeric = columns(rows, jobs)
    header = ["run", "overrides", *(["n"] if grouped else []), *(h for h, _ in numeric), "verdict"]
    if sep != "\n":  # Markdown: one-line headers
        header = [h.replace("\n", " ") for h in header]
    table = []
    for i, row in enumerate(rows):
        name = row["name"] + (f" {BEST}" if i == best else "")
        verdict = row["verdict"]
        if row["status"] == "failed":
            verdict = f"failed: {row['error']}"
        elif row["n_failed"]:
            verdict += f" ({row['n_failed']} failed)"
        line = [name, " ".join(short(o) for o in row["overrides"]) or "(defaults)"]
        line += [str(row["n"])] if grouped else []
        line += [_cell(row, key, sep) for _, key in numeric]
        table.append(line + [verdict])
    return header, table


def _width(header: str, column: list[str]) -> int:
    """The width a numeric column needs, and its padding."""
    return max(len(part) for text in [header, *column] for part in text.split("\n")) + 2


def _fit(header: list[str], lines: list[list[str]], width: int | None) -> list[int]:
    """The columns to show within `width`: all, or all but the least needed numbers (the
    best epoch, time, train loss, test metric, best val loss, test loss, val metric, in
    that order; never the objective), keeping the text columns readable."""
    keep = list(range(len(header)))
    if width is None:
        return keep

    def needed(kept):
        return sum(MIN_WIDTH[header[i]] + 2 if header[i] in MIN_WIDTH
                   else _width(header[i], [line[i] for line in lines]) for i in kept)

    first = ["best\nepoch", "time", "train\nloss", "test\n", "best val\nloss", "test\nloss",
             "val\n"]
    rank = {h: next((n for n, p in enumerate(first) if h.startswith(p) and (p != "test\n" or
                     h != "test\nloss")), len(first)) for h in header}
    order = sorted((i for i in keep if header[i] not in MIN_WIDTH and header[i] != "objective"
                    and header[i] != "n"), key=lambda i: rank[header[i]])
    while needed(keep) > width and order:
        keep.remove(order.pop(0))
    return keep


def rich_table(rows: list[dict], jobs: list[dict], best: int | None, title: str, caption: str,
               name_header: str = "run", width: int | None = None) -> Group:
    """The table for a terminal `width` columns wide (None: as wide as it needs); columns it
    leaves out are named in the caption."""
    header, table_cells = cells(rows, jobs, best, sep="\n")
    header[0] = name_header
    keep = _fit(header, table_cells, width)
    left_out = [header[i].replace("\n", " ") for i in range(len(header)) if i not in keep]
    if left_out:
        caption += f"\nleft out at this width: {', '.join(left_out)} (all in --csv / --json)"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for i in keep:
        name = header[i]
        text = name in MIN_WIDTH
        # the text columns wrap to what the numbers leave; numbers never wrap
        table.add_column(name, justify="left" if text else "right",
                         overflow="fold", no_wrap=not text, min_width=MIN_WIDTH.get(name))
    for row, line in zip(rows, table_cells):
        style = "red" if row["status"] == "failed" else ("bold green" if BEST in line[0] else None)
        table.add_row(*(line[i] for i in keep), style=style)
    return Group(table, Text(caption, style="dim"))  # the caption wraps to the terminal


def print_table(make: Callable[[int | None], Group]) -> None:
    """On a terminal, within its width; piped, as wide as the table needs (nothing cut).
    `make(width)` builds the table for a width."""
    console = Console()
    if console.is_terminal:
        console.print(make(console.width))
    else:
        table = make(None)
        needed = Console(width=1000).measure(table).maximum
        Console(width=max(needed, 80)).print(table)
    sys.stdout.flush()


def markdown(rows: list[dict], jobs: list[dict], best: int | None, title: str,
             caption: str, name_header: str = "run") -> str:
    header, table_cells = cells(rows, jobs, best)
    header[0] = name_header

    def line(values):
        return "| " + " | ".join(c.replace("|", "\\|") for c in values) + " |"

    text = [f"# {title}", "", line(header), line(["---"] * len(header))]
    text += [line(r) for r in table_cells]
    text += ["", *(f"{c}  " for c in caption.splitlines()), ""]
    return "\n".join(text)


def write_csv(rows: list[dict], path: Path) -> None:
    """One line per row; lists (dirs, overrides, seeds) joined by spaces."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v
                         for k, v in clean(row).items()})
    Path(path).write_text(out.getvalue())


def write_rows_json(rows: list[dict], path: Path) -> None:
    Path(path).write_text(json.dumps(clean(rows), indent=2) + "\n")
