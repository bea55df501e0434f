"""Datasets generated on the spot from a seed."""

from __future__ import annotations

import numpy as np

from dlrun.data.dataset import Dataset, make_dataset


def sine(
    *, seed: int, n: int = 1000, noise: float = 0.1, low: float = -3.0, high: float = 3.0,
    frequency: float = 1.0, **split,
) -> Dataset:
    """y = sin(frequency * x) + N(0, noise^2). Test shift `extrapolate`: test x outside [low, high]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n, 1))
    y = np.sin(frequency * x) + rng.normal(0.0, noise, size=x.shape)

    def extrapolate(x_test, y_test, rng):
        width = high - low
        side = rng.choice([-1.0, 1.0], size=x_test.shape)
        x_far = np.where(side > 0, high, low) + side * rng.uniform(0, 0.5 * width, size=x_test.shape)
        y_far = np.sin(frequency * x_far) + rng.normal(0.0, noise, size=x_far.shape)
        return x_far.astype(np.float32), y_far.astype(np.float32)

    return make_dataset(
        "sine", x, y, task="regression", seed=seed, shifts={"extrapolate": extrapolate}, **split
    )
