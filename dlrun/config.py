"""The semantic checks Hydra's schemas cannot express: ranges, and paths that must exist.

Types are checked by the schemas in `dlrun.schema`; ranges (lr > 0, dropout < 1, ...)
by `validate`, which raises a one-line `UserError`. No torch here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlrun.errors import UserError

# --- semantic checks ------------------------------------------------------------


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    def ok(value: float) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    text = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return ok, f"must lie in {text}"


_RANGES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("optim.lr", lambda v: v > 0 and math.isfinite(v), "must be a positive number, e.g. optim.lr=0.01"),
    ("optim.weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("trainer.epochs", lambda v: v >= 1, "must be >= 1"),
    ("trainer.batch_size", lambda v: v is None or v >= 1,
     "must be >= 1, or null for full-batch gradient descent"),
    ("trainer.eval_batch_size", lambda v: v >= 1, "must be >= 1"),
    ("trainer.grad_clip", lambda v: v is None or v > 0, "must be > 0, or null for no clipping"),
    ("trainer.progress", lambda v: v in ("auto", "bar", "lines", "off"),
     "must be one of auto, bar, lines, off"),
    ("model.dropout", *_between(0, 1, high_open=True)),
    ("reg.dropout.p", *_between(0, 1, high_open=True)),
    ("reg.l2.strength", lambda v: v >= 0, "must be >= 0"),
    ("data.val_fraction", *_between(0, 1, low_open=True, high_open=True)),
    ("data.test_fraction", *_between(0, 1, low_open=True, high_open=True)),
    ("data.label_noise", *_between(0, 1, high_open=True)),
    ("data.n_train", lambda v: v is None or v >= 1, "must be >= 1, or null for all of it"),
]


def validate(cfg: DictConfig) -> None:
    """Raise a one-line UserError for the first knob outside its allowed range."""
    for key, ok, rule in _RANGES:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None and not key.endswith(("batch_size", "grad_clip", "n_train")):
            continue
        if not ok(value):
            raise UserError(f"{key}={value} is out of range: it {rule}.")
    resume = cfg.trainer.resume
    if resume is not None and not os.path.isdir(resume):
        raise UserError(
            f"trainer.resume={resume}: no such run directory; "
            "pass the directory of an earlier run, e.g. trainer.resume=outputs/runs/<date>/<time>."
        )
