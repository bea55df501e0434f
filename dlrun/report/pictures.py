"""Pictures of runs, for looking before reading: `curves.png` in every run directory and
`sweep.png` in every multirun directory (also in TensorBoard's Images tab).

matplotlib's object API with the Agg canvas (no pyplot): no display, no global figure
state, so sweep jobs in threads or processes never share a figure. Drawing is never worth a
run: `save_curves` and `save_sweep` turn any failure into a one-line warning.
"""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dlrun.records import SPLITS, Diagnosis, EpochRow, best_row
from dlrun.records.rows import finite

CURVES = "curves.png"
SWEEP = "sweep.png"
COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
LOG_RANGE = 20  # a loss falling more than 20-fold reads better on a log axis


def _wide(values: list[float]) -> bool:
    """Do these positive values span enough decades to want a log axis?"""
    values = [v for v in values if finite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_RANGE


def reason(diagnosis: Diagnosis | None) -> str:
    """The verdict's one-line reason: the finding that names the verdict (or where an
    optimization issue is stuck), else why the map's last question was answered as it was."""
    if diagnosis is None:
        return ""
    named = diagnosis.finding(diagnosis.stuck or diagnosis.verdict)
    if named is not None:
        return named.message
    if diagnosis.path:
        return diagnosis.path[-1].because
    return diagnosis.findings[0].message if diagnosis.findings else ""


def curves_figure(rows: list[EpochRow], diagnosis: Diagnosis | None = None) -> Figure:
    """Loss per split per epoch, the best (lowest val loss) epoch marked, the verdict and its
    reason in the title, and the learning rate on a second axis when it changes."""
    figure = Figure(figsize=(7, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    losses = []
    for split in SPLITS:
        points = [(r.epoch, r.loss(split)) for r in rows if finite(r.loss(split))]
        if points:
            epochs, values = zip(*points)
            axes.plot(epochs, values, label=f"{split} loss", color=COLOURS[split],
                      marker="." if len(points) < 30 else None)
            losses += values
    if _wide(losses):
        axes.set_yscale("log")
    best = best_row(rows)
    if best is not None:
        axes.axvline(best.epoch, color="grey", linestyle=":", linewidth=1)
        axes.plot([best.epoch], [best.loss("val")], marker="*", markersize=14, color="gold",
                  markeredgecolor="black", linestyle="none",
                  label=f"best epoch {best.epoch} (val {best.loss('val'):.4g})")
    axes.set(xlabel="epoch", ylabel="loss")
    axes.grid(alpha=0.3)
    lrs = [(r.epoch, r.lr) for r in rows if finite(r.lr)]
    handles, labels = axes.get_legend_handles_labels()
    if len({lr for _, lr in lrs}) > 1:  # a schedule moved it
        second = axes.twinx()
        (line,) = second.step(*zip(*lrs), where="post", color="grey", alpha=0.6, label="lr")
        second.set_ylabel("learning rate")
        if _wide([lr for _, lr in lrs]):
            second.set_yscale("log")
        handles, labels = handles + [line], labels + ["lr"]
    if handles:  # below the axes: inside, it would hide a curve
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 5),
                      fontsize="small", frameon=False)
    title = "no diagnosis" if diagnosis is None else f"verdict: {diagnosis.verdict}"
    why = reason(diagnosis)
    if why:
        title += "\n" + textwrap.shorten(why, 110, placeholder="...")
    axes.set_title(title, fontsize="medium")
    return figure


def _warn(what: str, error: Exception) -> None:
    print(f"dlrun: warning: could not draw {what} ({type(error).__name__}: {error}); "
          "the run's other files are complete", file=sys.stderr)


def save_curves(run_dir: Path, rows: list[EpochRow], diagnosis: Diagnosis | None,
                tensorboard: bool = True) -> Path | None:
    """curves.png in the run directory (and in its TensorBoard Images tab); None when it failed."""
    from dlrun.report.tensorboard import add_figure, board_dir

    try:
        figure = curves_figure(rows, diagnosis)
        path = Path(run_dir) / CURVES
        figure.savefig(path)
        if tensorboard:
            add_figure(board_dir(run_dir), "curves", figure)
        return path
    except Exception as error:  # noqa: BLE001  a picture never costs the run its files
        _warn(CURVES, error)
        return None


# --- sweeps ------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _log_axis(key: str, values: list) -> bool:
    """Learning rates (and weight decays) on a log axis; other numbers when they span decades."""
    numbers = [v for v in values if _is_number(v)]
    if not numbers or min(numbers) <= 0:
        return False
    return key.rsplit(".", 1)[-1] in ("lr", "weight_decay") or max(numbers) / min(numbers) >= 100


def sweep_figure(jobs: list[dict], swept: dict[str, list], best: int | None) -> Figure:
    """The objective against each swept knob, one panel each; failed and pruned jobs marked
    along the top of each panel, the best job starred.

    `jobs` are sweep-summary job records (`status`, `objective`); `swept[key]` holds each
    job's value of `key` (None when the job did not set it); `best` the best job's index."""
    keys = list(swept) or ["job"]
    if not swept:
        swept = {"job": list(range(len(jobs)))}
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.4 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    scores = [j["objective"] for j in jobs if j["status"] == "ok" and _is_number(j["objective"])]
    top = max(scores, default=1.0)
    for n, key in enumerate(keys):
        axes = figure.add_subplot(rows, cols, n + 1)
        values = swept[key]
        numeric = all(_is_number(v) for v in values if v is not None)
        labels = [] if numeric else sorted({str(v) for v in values if v is not None})
        xs = [v if numeric or v is None else labels.index(str(v)) for v in values]
        for marker, status, colour in (("o", "ok", "tab:blue"), ("x", "failed", "tab:red"),
                                       ("v", "pruned", "tab:orange")):
            points = [(x, j["objective"] if status == "ok" else top)
                      for j, x in zip(jobs, xs)
                      if x is not None and j["status"] == status
                      and (status != "ok" or _is_number(j["objective"]))]
            if points:
                axes.scatter(*zip(*points), marker=marker, color=colour, label=status, zorder=2)
        if best is not None and xs[best] is not None:
            axes.scatter([xs[best]], [jobs[best]["objective"]], marker="*", s=260, color="gold",
                         edgecolor="black", zorder=3, label="best")
        if numeric and _log_axis(key, values):
            axes.set_xscale("log")
        if _wide(scores):
            axes.set_yscale("log")
        if labels:
            axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 3 else 0)
        axes.set(xlabel=key, ylabel="objective (val loss)" if n % cols == 0 else None)
        axes.grid(alpha=0.3)
        if n == 0:
            axes.legend(fontsize="small")
    figure.suptitle(f"{len(jobs)} jobs; failed and pruned jobs drawn at the top; ★ best")
    return figure


def save_sweep(sweep_dir: Path, jobs: list[dict], swept: dict[str, list],
               best: int | None) -> Path | None:
    """sweep.png in the sweep directory (and its own TensorBoard run, `tb/`); None on failure."""
    from dlrun.report.tensorboard import add_figure

    try:
        figure = sweep_figure(jobs, swept, best)
        path = Path(sweep_dir) / SWEEP
        figure.savefig(path)
        add_figure(Path(sweep_dir) / "tb", "sweep", figure)
        return path
    except Exception as error:  # noqa: BLE001  the sweep summary's files come first
        _warn(SWEEP, error)
        return None
