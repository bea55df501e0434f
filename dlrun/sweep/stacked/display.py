"""The terminal while a stack trains: one bar (or about 20 lines) for the whole stack, not K."""

from __future__ import annotations

import math

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dlrun.records import EpochRow
from dlrun.report.terminal import console


class StackDisplay:
    def __init__(self, number: int, nums: list[int], epochs: int, mode: str = "auto"):
        if mode == "auto":
            mode = "bar" if console.is_terminal else "lines"
        self.mode, self.epochs, self.every = mode, epochs, max(1, epochs // 20)
        self.name, self.nums = f"stack {number} ({len(nums)} jobs)", nums
        self.progress = None
        if mode == "bar":
            self.progress = Progress(TextColumn(f"[bold]{self.name}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                                     console=console)
            self.task = self.progress.add_task("stack", total=epochs, status="")
            self.progress.start()

    def status(self, rows: dict[int, EpochRow]) -> str:
        finite = [(row.loss("val"), j) for j, row in rows.items()
                  if row.loss("val") is not None and math.isfinite(row.loss("val"))]
        failed = sum(row.non_finite for row in rows.values())
        text = f"{len(rows)} training"
        if finite:
            best, at = min(finite)
            text += f", val_loss {best:.4f} (job {self.nums[at]}) to {max(finite)[0]:.4f}"
        return text + (f", {failed} non-finite" if failed else "")

    def update(self, rows: dict[int, EpochRow]) -> None:
        if not rows:
            return
        epoch = next(iter(rows.values())).epoch
        if self.mode == "bar":
            self.progress.update(self.task, completed=epoch, status=self.status(rows))
        elif self.mode == "lines" and (epoch % self.every == 0 or epoch == self.epochs):
            print(f"{self.name} epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  "
                  f"{self.status(rows)}", flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
