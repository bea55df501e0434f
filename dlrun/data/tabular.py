"""Datasets bundled with scikit-learn: real data, no download."""

from __future__ import annotations

import numpy as np
from sklearn import datasets as sk

from dlrun.data.dataset import Dataset, make_dataset


def _invert(x, y, rng):
    return x.max() - x, y


def _rotate(x, y, rng):
    return np.rot90(x, k=1, axes=(-2, -1)).copy(), y


def _noise(x, y, rng):
    return x + rng.normal(0.0, 0.5 * x.std(), size=x.shape).astype(x.dtype), y


def digits(*, seed: int, flat: bool = False, **split) -> Dataset:
    """8x8 grey-level digits, 10 classes. Test shifts: invert, rotate (90 degrees), noise."""
    bunch = sk.load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # N x 1 x 8 x 8
    data = make_dataset(
        "digits", x, bunch.target, task="multiclass", seed=seed,
        shifts={"invert": _invert, "rotate": _rotate, "noise": _noise}, **split,
    )
    if flat:
        for name in ("train", "val", "test"):
            setattr(data, f"x_{name}", getattr(data, f"x_{name}").flatten(1))
    return data
