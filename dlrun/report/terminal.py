"""The terminal: a live bar on a TTY, plain lines elsewhere, and a result table at the end."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console()


def _metric(row: dict, split: str) -> str:
    if f"{split}_exact" in row:  # seq2seq: whole target sequences right
        return f"{split}_exact {row[f'{split}_exact']:.3f}"
    if f"{split}_acc" in row:
        return f"{split}_acc {row[f'{split}_acc']:.3f}"
    if f"{split}_mae" in row:
        return f"{split}_mae {row[f'{split}_mae']:.4f}"
    return ""


def epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  "
        f"train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
        f"{_metric(row, 'val')}  lr {row['lr']:.3g}"
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

    def update(self, row: dict) -> None:
        if self.mode == "bar":
            status = f"loss {row['train_loss']:.4f} val {row['val_loss']:.4f} {_metric(row, 'val')}"
            self.progress.update(self.task, completed=row["epoch"], status=status)
        elif self.mode == "lines":
            if row["epoch"] % self.every == 0 or row["epoch"] == self.epochs:
                print(epoch_line(row, self.epochs), flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def result_table(summary: dict) -> Table:
    """Final and best metrics per split, then the run's cost."""
    final, best = summary["final"], summary["best"]
    metric = next((m for m in ("exact", "acc", "mae") if f"val_{m}" in final), None)
    table = Table(title=f"dlrun result: {summary['run_dir']}", show_header=True)
    table.add_column("")
    for split in ("train", "val", "test"):
        table.add_column(split, justify="right")

    def fmt(value):
        return "-" if value is None else f"{value:.4f}"

    if summary.get("status") == "failed":
        table.title += f" [bold red]FAILED: {summary['error']}"

    table.add_row("final loss", *(fmt(final.get(f"{s}_loss")) for s in ("train", "val", "test")))
    if metric:
        table.add_row(f"final {metric}", *(fmt(final.get(f"{s}_{metric}")) for s in ("train", "val", "test")))
    if best:
        table.add_row(f"best epoch {best['epoch']} loss",
                      *(fmt(best.get(f"{s}_loss")) for s in ("train", "val", "test")))
        if metric:
            table.add_row(f"best epoch {best['epoch']} {metric}",
                          *(fmt(best.get(f"{s}_{metric}")) for s in ("train", "val", "test")))
    table.caption = (
        f"{summary['params']:,} parameters on {summary['device']}; {summary['epochs']} epochs, "
        f"{summary['steps']} steps in {summary['wall_time_s']:.1f} s ({summary['steps_per_s']:.0f} steps/s)"
    )
    return table


def print_result(summary: dict) -> None:
    console.print(result_table(summary))
    sys.stdout.flush()


def print_samples(samples: dict[str, str]) -> None:
    """What a token model generated after training, each under its tag."""
    for tag, text in samples.items():
        console.rule(tag)
        console.print(text, markup=False, highlight=False)
    sys.stdout.flush()
