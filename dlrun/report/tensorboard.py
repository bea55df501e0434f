"""TensorBoard events: one TensorBoard run per split, so a chart overlays train/val/test, and
a sweep job's runs carry its overrides: `3/tb/optim.lr=0.1,optim=adam/val`.

Layout under a run directory (`tb/<overrides>/` instead of `tb/` in a sweep job; see
`board_dir`):
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
LABEL_CHARS = 120  # a file name has 255 bytes; the job number keeps the runs apart anyway
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


def board_dir(run_dir: Path) -> Path:
    """Where a run's events go: `<run>/tb`, or in a multirun job `<run>/tb/<its overrides>`
    (Hydra's `override_dirname`), so TensorBoard names the job's runs by what it changed.
    The job directory itself stays `<sweep>/<job number>`: a path with `=` and `,` could not
    be given to `trainer.resume=` unquoted."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    root = Path(run_dir) / "tb"
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return root
    label = HydraConfig.get().job.override_dirname.replace("/", "∕")[:LABEL_CHARS]
    return root / label if label else root


class TensorBoardLog:
    """The run's TensorBoard writers; with `enabled=False` (a `logger=[...]` without
    tensorboard) it writes nothing."""

    def __init__(self, run_dir: Path, purge_step: int | None = None, enabled: bool = True):
        root = board_dir(run_dir)
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


def add_figure(board: Path, tag: str, figure) -> None:
    """A matplotlib figure into the Images tab of the TensorBoard run at `board`."""
    writer = SummaryWriter(str(board))
    try:
        writer.add_figure(tag, figure, 0, close=False)
    finally:
        writer.close()
