"""The LR a range test suggests: from where its loss really falls fastest and its minimum.

A range test records one mini-batch loss per LR, so the curve is noisy: the moving average
of w losses still wanders by sigma/sqrt(w), and the slope between two neighbouring points
of that average wanders by about sigma*sqrt(2)/(w * step in log LR). On a flat start that
wander is as large as the real slope of the fall (linear regression on diabetes: ~0.6 per
decade either way), and the most negative of a hundred point slopes is then the largest
noise excursion, not the fall. So the rule measures falls, not point slopes, and only
falls that noise of this size cannot produce:

1. Smooth the loss with a centered moving average over 5% of the steps; its minimum ends
   the search (past it the LR is too large).
2. Measure the noise of that smoothed loss on the curve itself (`smoothed_noise`).
3. The noise floor is the largest fall that pure noise of that size reaches before the
   minimum (`noise_floor`). If the smoothed loss never falls by that much, the loss
   never really fell and there is no suggestion.
4. Among stretches of log LR over which the smoothed loss falls by at least the floor,
   take the steepest (fall per decade of LR); the steepest descent is where the loss is
   halfway down that stretch. On a clean curve the floor is tiny and this is the point
   of steepest descent; on a noisy one the stretch widens until its fall is real.
5. Suggest the LR halfway, in log LR, between the steepest descent and the minimum.

Why not the steepest descent itself: the loss falls fastest where the LR first becomes
large enough to matter within the test's own pace (one step per LR), which comes earlier
the more steps per decade the test takes, and, on a curve with an easy first drop (a
language model learning letter frequencies), long before the LR that trains the rest.
The minimum comes where the LR is already too large to keep training. Short training
runs do best between the two (measured in tests/test_lr_find.py and the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import studentized_range
from sklearn.isotonic import IsotonicRegression

RULE = (
    "halfway in log(lr) between the steepest fall of the smoothed loss that beats its noise "
    "and the smoothed loss's minimum"
)
CONFIDENCE = 0.99  # pure noise falls by the floor in about 1 curve in 100 (or fewer)


@dataclass
class Suggestion:
    smoothed: np.ndarray  # centered moving average of the losses
    index: int | None  # the suggested step (None: no fall beyond the noise)
    steepest_index: int | None  # where the loss really falls fastest
    min_index: int  # where the smoothed loss is lowest
    fall: float  # the largest fall of the smoothed loss before its minimum
    noise_floor: float  # the largest fall that noise alone would reach there


def centered_average(values: list[float], window: int) -> np.ndarray:
    """Moving average over `window` points centered on each one (edges repeat the end values)."""
    half = window // 2
    padded = np.pad(np.asarray(values, dtype=float), half, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def smoothing_window(steps: int) -> int:
    """An odd window of 5% of the steps (at least 3)."""
    return max(3, steps // 20) | 1


def smoothed_noise(losses: np.ndarray, smooth: np.ndarray, window: int) -> float:
    """The standard deviation of the smoothed loss around the curve it smooths.

    Two estimates, each blind to one kind of noise, and the larger is kept. The per-step
    scatter of the losses around their average, divided by sqrt(window), is precise but
    assumes the steps' noise independent (noise correlated over a few steps makes the
    average wander more). The scatter of second differences of the average at lag
    `window` (three disjoint windows) sees that correlation, and its median ignores both
    the curve's trend and outliers, but with few windows it is imprecise.
    """
    per_step = float(np.std(np.diff(losses - smooth))) / math.sqrt(2 * window)
    if len(smooth) <= 2 * window:
        return per_step
    second = smooth[2 * window :] - 2 * smooth[window:-window] + smooth[: -2 * window]
    mad = float(np.median(np.abs(second - np.median(second))))
    return max(per_step, 1.4826 * mad / math.sqrt(6))  # 1.4826 x MAD = sigma for a normal


def noise_floor(noise: float, points: int) -> float:
    """The fall that pure noise exceeds before the minimum in at most 1 - CONFIDENCE of curves.

    A fall is the difference of two of the `points` smoothed values, so it is at most
    their range. For independent normal values the range's quantile is the studentized
    range distribution (infinite degrees of freedom); the smoothed values are positively
    correlated, which narrows their range, but the noise itself is estimated, which widens
    it. On simulated flat curves of 200 steps no suggestion is made for 98% of Gaussian
    noise, 99% of diabetes batch losses resampled, 96% of t(3) noise, 92% of noise
    correlated between neighbouring steps (MA(1), 0.5), and 96% of Gaussian noise over
    1000 steps.
    """
    if points < 2:
        return math.inf
    return noise * float(studentized_range.ppf(CONFIDENCE, points, math.inf))


def steepest_fall(log_lrs: np.ndarray, smooth: np.ndarray, floor: float) -> tuple[int, int] | None:
    """(a, b), a < b: the stretch whose fall smooth[a] - smooth[b] >= floor is steepest per decade."""
    best, pair = 0.0, None
    for a in range(len(smooth) - 1):
        fall = smooth[a] - smooth[a + 1 :]
        rate = np.where(fall >= floor, fall / (log_lrs[a + 1 :] - log_lrs[a]), 0.0)
        b = int(np.argmax(rate))
        if rate[b] > best:
            best, pair = float(rate[b]), (a, a + 1 + b)
    return pair


def suggest(lrs: list[float], losses: list[float]) -> Suggestion:
    """The suggested step of a range test whose losses are all finite (see the module's rule)."""
    values = np.asarray(losses, dtype=float)
    if len(values) < 3:
        low = int(np.argmin(values)) if len(values) else 0
        return Suggestion(values, None, None, low, 0.0, math.inf)
    window = smoothing_window(len(values))
    smooth = centered_average(values, window)
    low = int(np.argmin(smooth))
    if low < 2:  # lowest at the start: the loss only rose
        return Suggestion(smooth, None, None, low, 0.0, math.inf)
    # the first half window repeats the first loss, so those smoothed values are noisier
    first = min(window // 2, low)
    stretch = smooth[first : low + 1]
    fall = float(np.max(np.maximum.accumulate(stretch) - stretch))
    floor = noise_floor(smoothed_noise(values[: low + 1], smooth[: low + 1], window), len(stretch))
    pair = steepest_fall(np.log10(lrs[first : low + 1]), stretch, floor)
    if pair is None:
        return Suggestion(smooth, None, None, low, fall, floor)
    a, b = first + pair[0], first + pair[1]
    steepest = a + middle_of_fall(values[a : b + 1])
    # the LRs are evenly spaced in log scale, so the middle step is the middle in log LR
    return Suggestion(smooth, (steepest + low) // 2, steepest, low, fall, floor)


def middle_of_fall(losses: np.ndarray) -> int:
    """Where a falling stretch of noisy losses is halfway down.

    The first point of the smoothed loss below the halfway level can be a noise dip long
    before the fall; the best non-increasing fit to the losses (isotonic regression) pools
    such a dip with its neighbours, so it crosses the halfway level once, at the fall.
    """
    fit = IsotonicRegression(increasing=False).fit_transform(np.arange(len(losses)), losses)
    return int(np.argmax(fit <= (fit[0] + fit[-1]) / 2))
