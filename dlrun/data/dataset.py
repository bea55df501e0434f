"""Splits that live on the device as tensors, and the one recipe every dataset follows.

Every loader produces raw arrays and calls `make_dataset`, which splits
train/val/test (stratified for classification), subsamples the training split,
adds label noise to training labels only, optionally shifts the test split, and
standardizes with training statistics only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dlrun.errors import UserError

TASKS = ("regression", "binary", "multiclass")


@dataclass
class Dataset:
    """Three splits as tensors.

    Inputs: tabular (N, F), images (N, C, H, W), sequences (N, T, F) batch-first with
    features last. Targets: regression float (N, k); class labels long (N,), or (N, T)
    for per-step labelling.
    """

    name: str
    task: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None = None
    test_shift: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def per_step(self) -> bool:
        """Class labels with a time axis, y of shape (N, T): one label per sequence step."""
        return self.task != "regression" and self.y_train.ndim == 2

    @property
    def out_features(self) -> int:
        if self.task == "multiclass":
            return int(self.n_classes)
        if self.task == "binary":
            return 1
        return int(self.y_train.shape[1])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def to(self, device: torch.device) -> Dataset:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


def _split(x, y, fraction, stratify, seed):
    strata = y if stratify else None
    try:
        return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=strata)
    except ValueError:  # a class too rare to stratify: fall back to a plain split
        return train_test_split(x, y, test_size=fraction, random_state=seed)


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per-feature z-scores with training statistics; a constant feature keeps scale 1."""
    flat = train.reshape(len(train), -1)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-8] = 1.0
    return [((a.reshape(len(a), -1) - mean) / std).reshape(a.shape) for a in (train, *others)]


def _add_label_noise(y, fraction, task, n_classes, rng):
    """Replace a fraction of training targets with random ones (a random class or value)."""
    y = y.copy()
    count = int(round(fraction * len(y)))
    index = rng.choice(len(y), size=count, replace=False)
    if task == "regression":
        y[index] = rng.permutation(y)[:count]
    else:
        # shift by a non-zero offset so a "flipped" label is always a different class
        y[index] = (y[index] + rng.integers(1, n_classes, size=count)) % n_classes
    return y


def make_dataset(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    n_train: int | None = None,
    label_noise: float = 0.0,
    test_shift: str | None = None,
    shifts: Mapping[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple]] = {},
    test: tuple[np.ndarray, np.ndarray] | None = None,
    n_classes: int | None = None,
) -> Dataset:
    """Split, subsample, corrupt, shift and standardize raw arrays into a `Dataset`.

    `test` gives a dataset's own test split; otherwise `test_fraction` of the data
    is held out. `shifts` maps a `data.test_shift` name to a function that turns
    the clean test split into a shifted one; val always stays in distribution.
    """
    assert task in TASKS, task
    classification = task != "regression"
    if classification:
        y = y.astype(np.int64)
        n_classes = n_classes or int(y.max()) + 1
    else:
        y = y.astype(np.float32).reshape(len(y), -1)
    x = x.astype(np.float32)
    if test is None:
        x, x_test, y, y_test = _split(x, y, test_fraction, classification, seed)
    else:
        x_test, y_test = test[0].astype(np.float32), test[1].astype(y.dtype).reshape(-1, *y.shape[1:])
    x_train, x_val, y_train, y_val = _split(x, y, val_fraction, classification, seed + 1)

    if n_train is not None:
        if n_train > len(x_train):
            raise UserError(
                f"data.n_train={n_train} is larger than the {len(x_train)} training examples "
                f"{name} has after the val/test splits; use data.n_train<={len(x_train)} or null."
            )
        keep = np.random.default_rng(seed).permutation(len(x_train))[:n_train]
        x_train, y_train = x_train[keep], y_train[keep]

    rng = np.random.default_rng(seed + 2)
    if label_noise > 0:
        y_train = _add_label_noise(y_train, label_noise, task, n_classes, rng)
    if test_shift is not None:
        if test_shift not in shifts:
            choices = ", ".join(sorted(shifts)) or "none for this dataset"
            raise UserError(f"data.test_shift={test_shift} is unknown for {name}; choose from: {choices}.")
        x_test, y_test = shifts[test_shift](x_test, y_test, rng)

    x_train, x_val, x_test = _standardize(x_train, x_val, x_test)
    if not classification:  # losses then read in units of the training target's spread
        y_train, y_val, y_test = _standardize(y_train, y_val, y_test)

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    return Dataset(
        name=name,
        task=task,
        x_train=tensor(x_train),
        y_train=tensor(y_train),
        x_val=tensor(x_val),
        y_val=tensor(y_val),
        x_test=tensor(x_test),
        y_test=tensor(y_test),
        n_classes=n_classes if classification else None,
        test_shift=test_shift,
    )
