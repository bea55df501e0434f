"""What the run's own metrics history says: plateaus, oscillation, a loss still falling,
gradient spikes, non-finite losses, and where the validation loss was lowest.

Pure functions over the epoch rows (metrics.jsonl); no torch.
"""

from __future__ import annotations

import math
import statistics

from dlrun.records import EpochRow


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def window_size(epochs: int, fraction: float) -> int:
    """The last `fraction` of the epochs, at least 3 (fewer when the run is shorter)."""
    return min(epochs, max(3, math.ceil(fraction * epochs)))


def _losses_finite(row: EpochRow) -> bool:
    """The row's training and validation losses (and its mean batch loss, when it has one)."""
    losses = [row.loss("train"), row.loss("val")]
    return all(finite(v) for v in losses + ([] if row.batch_loss is None else [row.batch_loss]))


def analyze_history(rows: list[EpochRow], th) -> dict:
    """Evidence from the epoch rows; `th` holds the diagnose thresholds."""
    epochs = len(rows)
    out: dict = {"epochs": epochs}
    if not rows:
        return out
    bad = next((r.epoch for r in rows if not _losses_finite(r)), None)
    out["nonfinite_epoch"] = bad
    rows = [r for r in rows if r.epoch != bad] if bad is not None else rows
    out["finite_epochs"] = len(rows)
    if not rows:
        return out

    train = [r.loss("train") for r in rows]
    val = [r.loss("val") for r in rows]
    best = min(range(len(val)), key=val.__getitem__)
    out.update(
        first_train_loss=train[0],
        final_train_loss=train[-1],
        min_val_epoch=rows[best].epoch,
        min_val_loss=val[best],
        final_val_loss=val[-1],
        early_stopping_saves=val[-1] - val[best],
        epochs_after_min_val=rows[-1].epoch - rows[best].epoch,
    )

    # the end of the run: still falling, stalled, or bouncing?
    w = window_size(len(train), th.window_fraction)
    tail = train[-w:]
    out["window"] = w
    if w >= 2 and tail[0] > 0:
        # mean relative fall per epoch over the window (positive: falling)
        out["fall_rate"] = (tail[0] - tail[-1]) / (tail[0] * (w - 1))
    rises = [b > a * (1 + 1e-3) for a, b in zip(train, train[1:])]
    late = rises[len(rises) // 2 :]  # second half of the run
    out["rise_fraction"] = sum(late) / len(late) if late else 0.0
    falls = sum(b < a for a, b in zip(tail, tail[1:]))
    out["still_falling"] = bool(
        w >= 2 and out.get("fall_rate", 0) > th.falling_rate and falls >= 0.75 * (w - 1)
    )
    out["oscillating"] = bool(len(late) >= 2 and out["rise_fraction"] > th.oscillation_fraction)
    out["stalled"] = bool(w >= 3 and abs(out.get("fall_rate", 0)) <= th.falling_rate)

    # gradient spikes: an epoch's mean gradient norm far above the run's median
    norms = [r.grad_norm for r in rows if finite(r.grad_norm)]
    if len(norms) >= 3:
        median = statistics.median(norms)
        peak = max(norms)
        out["grad_norm_median"] = median
        out["grad_norm_peak"] = peak
        out["grad_spike"] = bool(median > 0 and peak > th.grad_spike_ratio * median)
    return out
