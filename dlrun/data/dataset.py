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


def _split(index, y, fraction, stratify, seed, name):
    """Split example indices; stratified by class when labels are one per example."""
    strata = y[index] if stratify and y.ndim == 1 else None
    try:
        return train_test_split(index, test_size=fraction, random_state=seed, stratify=strata)
    except ValueError:  # a class too rare to stratify: fall back to a plain split
        pass
    try:
        return train_test_split(index, test_size=fraction, random_state=seed)
    except ValueError:
        raise UserError(
            f"{name} has {len(index)} examples, too few to hold out a fraction of {fraction}; "
            "use more data or a larger data.val_fraction / data.test_fraction."
        ) from None


# which axes share one mean and std: every other axis is a separate "feature"
STANDARDIZE = {
    "feature": lambda ndim: (0,),  # tabular features, or every pixel of a small image
    "channel": lambda ndim: (0, *range(2, ndim)),  # images: one scale per colour channel
    "last": lambda ndim: tuple(range(ndim - 1)),  # sequences: per feature over all steps
}


def _standardize(train: np.ndarray, *others: np.ndarray, mode: str = "feature") -> list[np.ndarray]:
    """Z-scores with training statistics (in place); a constant feature keeps scale 1."""
    axes = STANDARDIZE[mode](train.ndim)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std[std < 1e-8] = 1.0
    for a in (train, *others):
        a -= mean
        a /= std
    return [train, *others]


def _add_label_noise(y, fraction, task, n_classes, rng):
    """Replace a fraction of training targets with random ones (a random class or value).

    Per-step labels (N, T) flip that fraction of all their steps.
    """
    y = y.copy()
    if task != "regression" and y.ndim == 2:
        flat = y.reshape(-1)
        count = int(round(fraction * flat.size))
        index = rng.choice(flat.size, size=count, replace=False)
        flat[index] = (flat[index] + rng.integers(1, n_classes, size=count)) % n_classes
        return flat.reshape(y.shape)
    count = int(round(fraction * len(y)))
    index = rng.choice(len(y), size=count, replace=False)
    if task == "regression":
        y[index] = rng.permutation(y)[:count]
    else:
        # shift by a non-zero offset so a "flipped" label is always a different class
        y[index] = (y[index] + rng.integers(1, n_classes, size=count)) % n_classes
    return y


def _floats(a: np.ndarray) -> np.ndarray:
    """A float32 array this module owns (standardization works in place)."""
    return np.array(a, dtype=np.float32, copy=True)


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
    train_shift_fraction: float = 0.0,
    shifts: Mapping[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple]] = {},
    test: tuple[np.ndarray, np.ndarray] | None = None,
    n_classes: int | None = None,
    standardize: str | None = "feature",
) -> Dataset:
    """Split, subsample, corrupt, shift and standardize raw arrays into a `Dataset`.

    `test` gives a dataset's own test split; otherwise `test_fraction` of the data
    is held out. `shifts` maps a `data.test_shift` name to a function that turns
    the clean test split (raw units) into a shifted one; val always stays in
    distribution. `standardize` names the axes that share statistics (see
    STANDARDIZE), or None to keep raw values. Splits are taken by index, so
    large uint8 image arrays become float32 one split at a time.
    """
    assert task in TASKS, task
    assert standardize is None or standardize in STANDARDIZE, standardize
    classification = task != "regression"
    if classification:
        y = np.asarray(y).astype(np.int64)
        labels = (
            y if test is None else np.concatenate([y.reshape(-1), np.asarray(test[1]).reshape(-1)])
        )
        n_classes = n_classes or int(labels.max()) + 1
    else:
        y = np.asarray(y).astype(np.float32).reshape(len(y), -1)
    index = np.arange(len(x))
    if test is None:
        index, test_index = _split(index, y, test_fraction, classification, seed, name)
        x_test, y_test = _floats(x[test_index]), y[test_index]
    else:
        x_test, y_test = (
            _floats(test[0]),
            np.asarray(test[1]).astype(y.dtype).reshape(-1, *y.shape[1:]),
        )
    train_index, val_index = _split(index, y, val_fraction, classification, seed + 1, name)

    if n_train is not None:
        if n_train > len(train_index):
            raise UserError(
                f"data.n_train={n_train} is larger than the {len(train_index)} training examples "
                f"{name} has after the val/test splits; use data.n_train<={len(train_index)} or null."
            )
        keep = np.random.default_rng(seed).permutation(len(train_index))[:n_train]
        train_index = train_index[keep]
    x_train, y_train = _floats(x[train_index]), y[train_index]
    x_val, y_val = _floats(x[val_index]), y[val_index]

    rng = np.random.default_rng(seed + 2)
    if label_noise > 0:
        y_train = _add_label_noise(y_train, label_noise, task, n_classes, rng)
    if test_shift is not None:
        if test_shift not in shifts:
            choices = ", ".join(sorted(shifts)) or "none for this dataset"
            raise UserError(
                f"data.test_shift={test_shift} is unknown for {name}; choose from: {choices}."
            )
        x_test, y_test = shifts[test_shift](x_test, y_test, rng)
        x_test, y_test = _floats(x_test), np.asarray(y_test).astype(y.dtype)
    if train_shift_fraction > 0:
        if test_shift is None:
            raise UserError(
                f"data.train_shift_fraction={train_shift_fraction} draws training examples the way "
                "the test split is shifted; set data.test_shift too, or leave the fraction at 0."
            )
        part = rng.choice(len(x_train), size=int(round(train_shift_fraction * len(x_train))),
                          replace=False)
        moved_x, moved_y = shifts[test_shift](x_train[part], y_train[part], rng)
        x_train[part], y_train[part] = _floats(moved_x), np.asarray(moved_y).astype(y.dtype)

    if standardize is not None:
        x_train, x_val, x_test = _standardize(x_train, x_val, x_test, mode=standardize)
    if not classification:  # losses then read in units of the training target's spread
        y_train, y_val, y_test = _standardize(*(_floats(a) for a in (y_train, y_val, y_test)))

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
