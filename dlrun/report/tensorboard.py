"""TensorBoard events: one TensorBoard run per split, so a chart overlays train/val/test and a
sweep's jobs read as `<job>/tb/train`, `<job>/tb/val`, `<job>/tb/test`.

Layout under a run directory:
- `tb/train`, `tb/val`, `tb/test`: the scalars. `loss` and `metric/<name>` (acc, mae, ...)
  per split; `optim/lr`, `optim/grad_norm`, `optim/batch_loss` under `train`.
- `tb/` itself: no scalars; the run's HParams session, the custom-scalars layout, the
  diagnosis and samples (Text tab) and `curves` (Images tab).

The tag names are chosen for the order TensorBoard sorts them in: the Scalars tab groups
tags by their prefix alphabetically (loss, metric, optim) and HParams infers its metric
columns sorted by tag (the first five are shown), so the losses come first in both.
The custom-scalars layout puts "loss: train / val / test" first and the task metric second.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from dlrun.records import SPLITS, EpochRow

LOSS = "loss"
OPTIM = ("lr", "grad_norm", "batch_loss")  # under `train`, as optim/<name>


def tag(name: str) -> str:
    """The scalar tag of a per-split value: `loss`, or `metric/<name>` for a task metric."""
    return LOSS if name == LOSS else f"metric/{name}"


def layout(metrics: list[str]) -> dict:
    """The custom-scalars layout (torch's dict form of the plugin's Layout proto): charts that
    overlay each split of every run, the loss first, then each task metric, then the
    optimizer's numbers."""
    charts = {"loss: train / val / test": ["Multiline", [rf"^{LOSS}$"]]}
    charts.update({f"{m}: train / val / test": ["Multiline", [rf"^{tag(m)}$"]] for m in metrics})
    charts.update({name.replace("_", " "): ["Multiline", [rf"^optim/{name}$"]] for name in OPTIM})
    return {"dlrun": charts}


class TensorBoardLog:
    """The run's TensorBoard writers; with `enabled=False` (a `logger=[...]` without
    tensorboard) it writes nothing."""

    def __init__(self, run_dir: Path, purge_step: int | None = None, enabled: bool = True):
        root = run_dir / "tb"
        self.enabled = enabled
        # hparams, text, images
        self.run = SummaryWriter(str(root), purge_step=purge_step) if enabled else None
        self.splits = {s: SummaryWriter(str(root / s), purge_step=purge_step)
                       for s in SPLITS} if enabled else {}
        self._laid_out = False

    def epoch(self, row: EpochRow) -> None:
        if not self.enabled:
            return
        if not self._laid_out:  # the metric names are known from the first row
            self.run.add_custom_scalars(layout(row.metric_names()))
            self._laid_out = True
        for split, writer in self.splits.items():
            for name, value in row.splits.get(split, {}).items():
                if value is not None:
                    writer.add_scalar(tag(name), value, row.epoch)
        for name in OPTIM:  # grad_norm: absent with diagnose=off
            value = getattr(row, name)
            if value is not None:
                self.splits["train"].add_scalar(f"optim/{name}", value, row.epoch)

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        if self.enabled:
            self.run.add_text(tag, markdown, step)

    def close(self) -> None:
        for writer in ([self.run] if self.enabled else []) + list(self.splits.values()):
            writer.flush()
            writer.close()


def add_figure(run_dir: Path, tag: str, figure) -> None:
    """A matplotlib figure into the Images tab of the run at `run_dir/tb`."""
    writer = SummaryWriter(str(Path(run_dir) / "tb"))
    try:
        writer.add_figure(tag, figure, 0, close=False)
    finally:
        writer.close()
