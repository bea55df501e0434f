"""N-fold re-splits of a Dataset's train+val pool, for cross-validation.

The pool is the training and validation splits together, as `make_dataset` produced them
(standardized with the original training split's statistics, training labels with any
label noise); each fold validates on one part and trains on the rest. The test split is
passed through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold

from dlrun.data.dataset import Dataset
from dlrun.errors import UserError


def fold_indices(
    y: np.ndarray, folds: int, *, seed: int, stratify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, val) index arrays for each fold, shuffled with `seed`.

    Stratified by class when asked and every class has at least `folds` examples;
    otherwise (regression, per-step labels, rare classes) a plain shuffled KFold.
    """
    if folds > len(y):
        raise UserError(
            f"cv.folds={folds} is more than the {len(y)} examples in the train+val pool; "
            f"use cv.folds<={len(y)}."
        )
    if stratify and y.ndim == 1:
        counts = np.bincount(y)
        if counts[counts > 0].min() >= folds:  # every class can appear in every fold
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y))
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y))))


def pool(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation splits, concatenated in that order."""
    return torch.cat([data.x_train, data.x_val]), torch.cat([data.y_train, data.y_val])


def cross_validation_folds(
    data: Dataset, folds: int, *, seed: int, stratify: bool = True
) -> Iterator[Dataset]:
    """One Dataset per fold: train and val re-split from the pool, test unchanged."""
    x, y = pool(data)
    stratify = stratify and data.task != "regression"
    for train_index, val_index in fold_indices(
        y.cpu().numpy(), folds, seed=seed, stratify=stratify
    ):
        train = torch.as_tensor(train_index, device=x.device)
        val = torch.as_tensor(val_index, device=x.device)
        yield replace(data, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])
