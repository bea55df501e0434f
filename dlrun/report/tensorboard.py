"""TensorBoard events: one writer per split so a chart overlays train/val/test, and runs compare.

Layout under a run directory: `tb/` (lr, gradient norm, text), `tb/train`, `tb/val`,
`tb/test` (tags `loss` and the task metric). `tensorboard --logdir outputs` shows every
run and sweep job, each split as its own line in the same chart.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from dlrun.records import SPLITS, EpochRow


class TensorBoardLog:
    def __init__(self, run_dir: Path, purge_step: int | None = None):
        root = run_dir / "tb"
        self.run = SummaryWriter(str(root), purge_step=purge_step)
        self.splits = {s: SummaryWriter(str(root / s), purge_step=purge_step) for s in SPLITS}

    def epoch(self, row: EpochRow) -> None:
        for split, writer in self.splits.items():
            for name, value in row.splits.get(split, {}).items():
                if value is not None:
                    writer.add_scalar(name, value, row.epoch)
        for name in ("lr", "grad_norm", "batch_loss"):  # grad_norm: absent with diagnose=off
            value = getattr(row, name)
            if value is not None:
                self.run.add_scalar(name, value, row.epoch)

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        self.run.add_text(tag, markdown, step)

    def close(self) -> None:
        for writer in (self.run, *self.splits.values()):
            writer.flush()
            writer.close()
