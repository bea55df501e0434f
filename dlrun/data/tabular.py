"""Datasets bundled with scikit-learn: real data, no download."""

from __future__ import annotations

import numpy as np
from sklearn import datasets as sk

from dlrun.data import shifts
from dlrun.data.dataset import Dataset, make_dataset


def digits(*, seed: int, flat: bool = False, **split) -> Dataset:
    """8x8 grey-level digits, 10 classes. Test shifts: invert, rotate (90 degrees), noise."""
    bunch = sk.load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # N x 1 x 8 x 8
    data = make_dataset(
        "digits", x, bunch.target, task="multiclass", seed=seed, shifts=shifts.IMAGE, **split
    )
    if flat:  # after the shifts, which turn images
        for name in ("train", "val", "test"):
            setattr(data, f"x_{name}", getattr(data, f"x_{name}").flatten(1))
    return data


def _bundled(name: str, loader, task: str, seed: int, split: dict) -> Dataset:
    bunch = loader()
    return make_dataset(
        name, bunch.data, bunch.target, task=task, seed=seed, shifts=shifts.TABULAR, **split
    )


def iris(*, seed: int, **split) -> Dataset:
    """150 flowers, 4 measurements, 3 species."""
    return _bundled("iris", sk.load_iris, "multiclass", seed, split)


def wine(*, seed: int, **split) -> Dataset:
    """178 wines, 13 chemical measurements, 3 cultivars."""
    return _bundled("wine", sk.load_wine, "multiclass", seed, split)


def breast_cancer(*, seed: int, **split) -> Dataset:
    """569 tumours, 30 cell-nucleus features, malignant (0) or benign (1): a binary task."""
    return _bundled("breast_cancer", sk.load_breast_cancer, "binary", seed, split)


def diabetes(*, seed: int, **split) -> Dataset:
    """442 patients, 10 baseline measurements, disease progression a year later: regression."""
    return _bundled("diabetes", sk.load_diabetes, "regression", seed, split)
