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
    ("trainer.devices", lambda v: v >= 1, "must be >= 1 (the number of processes to train on)"),
    ("trainer.batch_size", lambda v: v is None or v >= 1,
     "must be >= 1, or null for full-batch gradient descent"),
    ("trainer.eval_batch_size", lambda v: v is None or v >= 1,
     "must be >= 1, or null for the device's default"),
    ("trainer.grad_clip", lambda v: v is None or v > 0, "must be > 0, or null for no clipping"),
    ("trainer.precision", lambda v: v in ("32", "bf16", "fp16"), "must be one of 32, bf16, fp16"),
    ("trainer.threads", lambda v: v is None or v >= 1, "must be >= 1, or null for automatic"),
    ("trainer.progress", lambda v: v in ("auto", "bar", "lines", "off"),
     "must be one of auto, bar, lines, off"),
    ("reg.dropout.p", *_between(0, 1, high_open=True)),
    ("model.dropout", *_between(0, 1, high_open=True)),
    # model sizes and loss knobs
    ("model.hidden", lambda v: v >= 0 if isinstance(v, int) else all(w >= 1 for w in v),
     "must list widths >= 1, e.g. model.hidden=[128,64] (cnn: one width >= 0)"),
    ("model.channels", lambda v: len(v) >= 1 and all(c >= 1 for c in v),
     "must list one or more channel counts >= 1, e.g. model.channels=[32,64]"),
    ("model.kernel_size", lambda v: v >= 1, "must be >= 1"),
    ("model.stride", lambda v: v >= 1, "must be >= 1"),
    ("model.padding", lambda v: v >= 0, "must be >= 0"),
    ("model.init_std", lambda v: v > 0, "must be > 0"),
    ("model.hidden_size", lambda v: v >= 1, "must be >= 1"),
    ("model.num_layers", lambda v: v >= 1, "must be >= 1"),
    ("model.d_model", lambda v: v >= 1, "must be >= 1"),
    ("model.heads", lambda v: v >= 1, "must be >= 1"),
    ("model.layers", lambda v: v >= 1, "must be >= 1"),
    ("model.feedforward", lambda v: v >= 1, "must be >= 1"),
    ("loss.delta", lambda v: v > 0, "must be > 0"),
    ("loss.label_smoothing", *_between(0, 1, high_open=True)),
    # token datasets: seq2seq toy tasks and data=text
    ("data.symbols", *_between(2, 10)),
    ("data.digits", *_between(1, 9)),
    ("data.block", lambda v: v >= 1, "must be >= 1 characters"),
    ("data.stride", lambda v: v >= 1, "must be >= 1, or null for the block length"),
    ("data.sample_chars", lambda v: v >= 0, "must be >= 0"),
    ("data.temperature", lambda v: v > 0, "must be > 0"),
    ("reg.l2.strength", lambda v: v >= 0, "must be >= 0"),
    ("data.val_fraction", *_between(0, 1, low_open=True, high_open=True)),
    ("data.test_fraction", *_between(0, 1, low_open=True, high_open=True)),
    ("data.label_noise", *_between(0, 1, high_open=True)),
    ("data.train_shift_fraction", *_between(0, 1)),
    ("data.n_train", lambda v: v is None or v >= 1, "must be >= 1, or null for all of it"),
    ("data.n", lambda v: v >= 10, "must be >= 10 examples"),
    ("data.noise", lambda v: v >= 0, "must be >= 0"),
    ("data.factor", *_between(0, 1, low_open=True, high_open=True)),
    ("data.arms", lambda v: v >= 2, "must be >= 2 (one class per arm)"),
    ("data.turns", lambda v: v > 0, "must be > 0"),
    ("data.length", lambda v: v >= 1, "must be >= 1 steps"),
    ("data.n_classes", lambda v: v >= 2, "must be >= 2, or null for the largest label + 1"),
    ("data.task", lambda v: v in ("regression", "binary", "multiclass"),
     "must be regression, binary or multiclass"),
    # optimizers, schedules, regularizers, cross-validation, the LR range test
    ("optim.momentum", *_between(0, 1, high_open=True)),
    ("optim.dampening", *_between(0, 1)),
    ("optim.alpha", *_between(0, 1, high_open=True)),
    ("optim.rho", *_between(0, 1, high_open=True)),
    ("optim.betas", lambda v: len(v) == 2 and all(0 <= b < 1 for b in v),
     "must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]"),
    ("optim.eps", lambda v: v > 0, "must be > 0"),
    ("optim.lr_decay", lambda v: v >= 0, "must be >= 0"),
    ("optim.momentum_decay", lambda v: v >= 0, "must be >= 0"),
    ("sched.interval", lambda v: v in ("epoch", "step"), "must be epoch or step"),
    ("sched.gamma", lambda v: v > 0, "must be > 0"),
    ("sched.step_size", lambda v: v >= 1, "must be >= 1"),
    ("sched.T_max", lambda v: v >= 1, "must be >= 1, or null for the whole run"),
    ("sched.total_steps", lambda v: v >= 1, "must be >= 1, or null for the whole run"),
    ("sched.warmup", lambda v: v >= 0, "must be >= 0: a fraction of the steps (< 1) or a number of steps"),
    ("sched.start_factor", *_between(0, 1, low_open=True)),
    ("sched.eta_min", lambda v: v >= 0, "must be >= 0"),
    ("sched.factor", *_between(0, 1, low_open=True)),
    ("sched.patience", lambda v: v >= 0, "must be >= 0"),
    ("sched.pct_start", *_between(0, 1, low_open=True, high_open=True)),
    ("sched.div_factor", lambda v: v > 0, "must be > 0"),
    ("sched.final_div_factor", lambda v: v > 0, "must be > 0"),
    ("reg.l1.strength", lambda v: v >= 0, "must be >= 0"),
    ("reg.elastic.strength", lambda v: v >= 0, "must be >= 0"),
    ("reg.elastic.l1_ratio", *_between(0, 1)),
    ("reg.early_stopping.patience", lambda v: v >= 1, "must be >= 1"),
    ("reg.early_stopping.min_delta", lambda v: v >= 0, "must be >= 0"),
    ("reg.augment.crop_pad", lambda v: v >= 0, "must be >= 0 pixels"),
    ("reg.augment.rotate", *_between(0, 180)),
    ("reg.augment.scale", *_between(0, 1, high_open=True)),
    ("reg.augment.noise", lambda v: v >= 0, "must be >= 0"),
    ("reg.augment.shift", lambda v: v >= 0, "must be >= 0 steps"),
    ("trainer.grad_clip_mode", lambda v: v in ("norm", "value"), "must be norm or value"),
    ("cv.folds", lambda v: v >= 2, "must be >= 2, or null for one ordinary run"),
    ("mode", lambda v: v in ("train", "lr_find"), "must be train or lr_find"),
    ("lr_find.start_lr", lambda v: v > 0, "must be > 0"),
    ("lr_find.end_lr", lambda v: v > 0, "must be > 0"),
    ("lr_find.steps", lambda v: v >= 10, "must be >= 10"),
    ("lr_find.smoothing", *_between(0, 1, high_open=True)),
    ("lr_find.diverge", lambda v: v > 1, "must be > 1"),
]


def validate(cfg: DictConfig) -> None:
    """Raise a one-line UserError for the first knob outside its allowed range."""
    for key, ok, rule in _RANGES:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):  # null is absent, or a knob's "off"/"auto"
            raise UserError(f"{key}={value} is out of range: it {rule}.")
    check_resume_dir(cfg.trainer.resume)


def check_resume_dir(resume: str | None) -> None:
    """`trainer.resume` must name an existing run directory (the CLI checks it before Hydra
    creates the run directory; `validate` checks it for in-process runs)."""
    if resume is not None and not os.path.isdir(resume):
        raise UserError(
            f"trainer.resume={resume}: no such run directory; "
            "pass the directory of an earlier run, e.g. trainer.resume=outputs/runs/<date>/<time>."
        )
