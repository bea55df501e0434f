"""What the run's own epochs say: plateaus, oscillation, a loss still falling, gradient
spikes, non-finite losses, and where the validation loss was lowest.

A pure function over the epoch rows; no torch.
"""

from __future__ import annotations

import math
import statistics

from dlrun.records import EpochRow
from dlrun.records.evidence import History
from dlrun.records.rows import finite

MIN_EPOCHS = 3  # the history says how the loss moves only over at least this many epochs


def window_size(epochs: int, fraction: float) -> int:
    """The last `fraction` of the epochs, at least 3 (fewer when the run is shorter)."""
    return min(epochs, max(3, math.ceil(fraction * epochs)))


def analyze_history(rows: list[EpochRow], th) -> History:
    """Evidence from the epoch rows; `th` holds the diagnose thresholds."""
    out = History(epochs=len(rows))
    if not rows:
        return out
    bad = next((r.epoch for r in rows if not r.finite), None)
    out.nonfinite_epoch = bad
    rows = [r for r in rows if r.epoch != bad] if bad is not None else rows
    out.finite_epochs = len(rows)
    if not rows:
        return out

    train = [r.loss("train") for r in rows]
    val = [r.loss("val") for r in rows]
    best = min(range(len(val)), key=val.__getitem__)
    out.first_train_loss, out.final_train_loss = train[0], train[-1]
    out.min_val_epoch, out.min_val_loss, out.final_val_loss = rows[best].epoch, val[best], val[-1]
    out.early_stopping_saves = val[-1] - val[best]
    out.epochs_after_min_val = rows[-1].epoch - rows[best].epoch

    if len(rows) < MIN_EPOCHS:  # too short to say whether the loss still falls
        return out
    # the end of the run: still falling, stalled, or bouncing?
    w = window_size(len(train), th.window_fraction)
    tail = train[-w:]
    out.window = w
    if w >= 2 and tail[0] > 0:
        # mean relative fall per epoch over the window (positive: falling)
        out.fall_rate = (tail[0] - tail[-1]) / (tail[0] * (w - 1))
    rises = [b > a * (1 + 1e-3) for a, b in zip(train, train[1:])]
    late = rises[len(rises) // 2 :]  # second half of the run
    out.rise_fraction = sum(late) / len(late) if late else 0.0
    falls = sum(b < a for a, b in zip(tail, tail[1:]))
    fall_rate = out.fall_rate or 0.0
    out.still_falling = bool(w >= 2 and fall_rate > th.falling_rate and falls >= 0.75 * (w - 1))
    out.oscillating = bool(len(late) >= 2 and out.rise_fraction > th.oscillation_fraction)
    out.stalled = bool(w >= 3 and abs(fall_rate) <= th.falling_rate)

    # gradient spikes: an epoch's mean gradient norm far above the run's median
    norms = [r.grad_norm for r in rows if finite(r.grad_norm)]
    if len(norms) >= 3:
        out.grad_norm_median = statistics.median(norms)
        out.grad_norm_peak = max(norms)
        out.grad_spike = bool(out.grad_norm_median > 0
                              and out.grad_norm_peak > th.grad_spike_ratio * out.grad_norm_median)
    return out
