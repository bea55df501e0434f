"""The terminal: a live bar on a TTY, plain lines elsewhere, and a result table at the end."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dlrun.records import SPLITS, EpochRow, Summary

console = Console()


# the task metric a line shows, in order of preference: seq2seq's whole-sequence exact
# match, accuracy, mean absolute error
SHOWN = (("exact", ".3f"), ("acc", ".3f"), ("mae", ".4f"))


def _metric(row: EpochRow, split: str) -> str:
    for name, spec in SHOWN:
        value = row.metric(split, name)
        if value is not None:
            return f"{split}_{name} {value:{spec}}"
    return ""


def epoch_line(row: EpochRow, epochs: int) -> str:
    return (
        f"epoch {row.epoch:>{len(str(epochs))}}/{epochs}  "
        f"train_loss {row.loss('train'):.4f}  val_loss {row.loss('val'):.4f}  "
        f"{_metric(row, 'val')}  lr {row.lr:.3g}"
    )


class EpochDisplay:
    """`bar`: a rich progress bar with the live loss; `lines`: about 20 plain lines; `off`: silence."""

    def __init__(self, epochs: int, mode: str = "auto", start: int = 0):
        if mode == "auto":
            mode = "bar" if console.is_terminal else "lines"
        self.mode, self.epochs = mode, epochs
        self.every = max(1, epochs // 20)
        self.progress = None
        if mode == "bar":
            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=console,
                transient=False,
            )
            self.task = self.progress.add_task("train", total=epochs, completed=start, status="")
            self.progress.start()

    def update(self, row: EpochRow) -> None:
        if self.mode == "bar":
            status = f"loss {row.loss('train'):.4f} val {row.loss('val'):.4f} {_metric(row, 'val')}"
            self.progress.update(self.task, completed=row.epoch, status=status)
        elif self.mode == "lines":
            if row.epoch % self.every == 0 or row.epoch == self.epochs:
                print(epoch_line(row, self.epochs), flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def result_table(summary: Summary, title: str | None = None, caption: str | None = None) -> Table:
    """Final and best metrics per split, then the run's cost (or the given title and caption)."""
    final, best = summary.final or EpochRow(), summary.best
    metric = next((m for m, _ in SHOWN if final.metric("val", m) is not None), None)
    table = Table(title=title or f"dlrun result: {summary.run_dir}", show_header=True)
    table.add_column("")
    for split in SPLITS:
        table.add_column(split, justify="right")

    def cells(row: EpochRow, name: str) -> list[str]:
        return ["-" if row.metric(s, name) is None else f"{row.metric(s, name):.4f}" for s in SPLITS]

    if summary.status == "failed":
        table.title += f" [bold red]FAILED: {summary.error}"

    table.add_row("final loss", *cells(final, "loss"))
    if metric:
        table.add_row(f"final {metric}", *cells(final, metric))
    if best is not None:
        table.add_row(f"best epoch {best.epoch} loss", *cells(best, "loss"))
        if metric:
            table.add_row(f"best epoch {best.epoch} {metric}", *cells(best, metric))
    table.caption = caption or (
        f"{summary.params:,} parameters on {summary.device}; {summary.epochs} epochs, "
        f"{summary.steps} steps in {summary.wall_time_s:.1f} s ({summary.steps_per_s:.0f} steps/s)"
    )
    return table


def print_result(summary: Summary, title: str | None = None, caption: str | None = None) -> None:
    console.print(result_table(summary, title, caption))
    sys.stdout.flush()


def print_samples(samples: dict[str, str]) -> None:
    """What a token model generated after training, each under its tag."""
    for tag, text in samples.items():
        console.rule(tag)
        console.print(text, markup=False, highlight=False)
    sys.stdout.flush()
