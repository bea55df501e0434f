"""Test-split shifts: each turns the clean test split (raw units) into one from another distribution.

A shift is `f(x_test, y_test, rng) -> (x_test, y_test)`; `make_dataset` applies the
one `data.test_shift` names before standardizing, and never touches train or val.
"""

from __future__ import annotations

import numpy as np


def invert(x, y, rng):
    """Images: dark strokes on a light background."""
    return x.max() - x, y


def rotate(x, y, rng):
    """Images: turned by 90 degrees."""
    return np.rot90(x, k=1, axes=(-2, -1)).copy(), y


def noise(x, y, rng):
    """Gaussian noise of half the test inputs' spread on every input."""
    return x + rng.normal(0.0, 0.5 * x.std(), size=x.shape).astype(x.dtype), y


def offset(x, y, rng):
    """Every feature moved by one of its standard deviations."""
    return x + x.std(axis=0, keepdims=True), y


def scale(x, y, rng):
    """Every feature stretched 1.5x about its mean (wider spread, same centre)."""
    mean = x.mean(axis=0, keepdims=True)
    return mean + 1.5 * (x - mean), y


def rotate_plane(x, y, rng):
    """2-D points turned by 30 degrees about the origin."""
    angle = np.deg2rad(30.0)
    turn = np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=x.dtype
    )
    return x @ turn.T, y


IMAGE = {"invert": invert, "rotate": rotate, "noise": noise}
TABULAR = {"offset": offset, "scale": scale, "noise": noise}
PLANE = {**TABULAR, "rotate": rotate_plane}
