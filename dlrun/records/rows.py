"""One epoch of a run: what `fit` yields and one line of metrics.jsonl.

On disk the row is flat (`train_loss`, `val_acc`, ...: DESIGN.md section 3); in memory
each split's metrics sit together, so readers ask `row.loss("val")` rather than build
key strings. Timing stays in memory: metrics.jsonl is bitwise reproducible on a CPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def clean(value):
    """JSON has no NaN/inf: they are written as null, so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclass
class EpochRow:
    """Per-split metrics (`splits["val"]["loss"]`), the learning rate and the step statistics
    of one epoch. Every field but the metrics is optional: a cross-validation's mean row
    holds validation metrics only."""

    epoch: int | None = None
    splits: dict[str, dict[str, float | None]] = field(default_factory=dict)
    lr: float | None = None
    batch_loss: float | None = None  # mean mini-batch loss of the epoch's steps
    grad_norm: float | None = None  # mean of the epoch's sampled global gradient norms
    steps: int | None = None
    best_epoch: int | None = None  # the epoch with the lowest val loss so far
    non_finite: bool = False  # a loss of this epoch was NaN/inf: the run stops here
    hessian_max: float | None = None  # diagnose.hessian_every: extreme eigenvalues
    hessian_min: float | None = None
    extra: dict = field(default_factory=dict)  # keys another tool added: kept on a round trip
    step_time_s: float | None = None  # seconds of training steps (memory only)
    epoch_time_s: float | None = None  # seconds of steps and evaluation (memory only)

    def loss(self, split: str) -> float | None:
        return self.splits.get(split, {}).get("loss")

    def metric(self, split: str, name: str) -> float | None:
        return self.splits.get(split, {}).get(name)

    def metric_names(self) -> list[str]:
        """The task metrics besides the loss, in the order the splits hold them."""
        names: list[str] = []
        for values in self.splits.values():
            names += [k for k in values if k != "loss" and k not in names]
        return names

    @property
    def finite(self) -> bool:
        """Every loss of the row is a finite number (the non-finite check of the loop)."""
        losses = [self.loss(s) for s in self.splits]
        losses += [] if self.batch_loss is None else [self.batch_loss]
        return not self.non_finite and all(finite(v) for v in losses)

    def get(self, key: str, default=None):
        """A flat metrics.jsonl key (`val_loss`, `lr`): for tables that list columns by name."""
        split, _, name = key.partition("_")
        if split in SPLITS and name:
            value = self.metric(split, name)
            return default if value is None else value
        return self.to_json().get(key, default)

    def to_json(self) -> dict:
        """The flat metrics.jsonl object, keys in today's order (non-finite values as null)."""
        out: dict = {} if self.epoch is None else {"epoch": self.epoch}
        for split in SPLITS:
            for name, value in self.splits.get(split, {}).items():
                out[f"{split}_{name}"] = value
        for key in ("lr", "batch_loss", "grad_norm", "steps", "best_epoch"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.non_finite:
            out["non_finite"] = True
        for key in ("hessian_max", "hessian_min"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(self.extra)
        return clean(out)

    @classmethod
    def from_json(cls, data: dict) -> EpochRow:
        row = cls()
        for key, value in data.items():
            split, _, name = key.partition("_")
            if split in SPLITS and name:
                row.splits.setdefault(split, {})[name] = value
            elif key in _SCALARS:
                setattr(row, key, value)
            else:
                row.extra[key] = value
        row.non_finite = bool(row.non_finite)
        return row


_SCALARS = {"epoch", "lr", "batch_loss", "grad_norm", "steps", "best_epoch", "non_finite",
            "hessian_max", "hessian_min", "step_time_s", "epoch_time_s"}


def read_rows(path: Path) -> list[EpochRow]:
    """The rows of a metrics.jsonl; a torn last line (a killed writer) is skipped."""
    rows = []
    if not Path(path).is_file():
        return rows
    for line in Path(path).read_text().splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            rows.append(EpochRow.from_json(data))
    return rows


def best_row(rows: list[EpochRow]) -> EpochRow | None:
    """The epoch with the lowest validation loss among those whose losses were finite
    (a non-finite loss is flagged in memory and written as null), or None."""
    ranked = [r for r in rows if not r.non_finite and finite(r.loss("val"))]
    return min(ranked, key=lambda r: r.loss("val"), default=None)
