"""Datasets generated on the spot from a seed: 1-D functions and 2-D point clouds."""

from __future__ import annotations

import numpy as np
from sklearn import datasets as sk

from dlrun.data import shifts
from dlrun.data.dataset import Dataset, make_dataset
from dlrun.errors import UserError

FUNCTIONS = {
    "sin": np.sin,
    "cos": np.cos,
    "square": np.square,
    "cubic": lambda x: x**3,
    "abs": np.abs,
    "step": np.sign,
    "sinc": np.sinc,
}


def sine(
    *,
    seed: int,
    n: int = 1000,
    noise: float = 0.1,
    low: float = -3.0,
    high: float = 3.0,
    frequency: float = 1.0,
    function: str = "sin",
    **split,
) -> Dataset:
    """y = f(frequency * x) + N(0, noise^2), f = sin by default (`data.function`).

    Test shift `extrapolate`: test x outside [low, high].
    """
    if function not in FUNCTIONS:
        raise UserError(
            f"data.function={function} is unknown; choose from: {', '.join(FUNCTIONS)}."
        )
    f = FUNCTIONS[function]
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n, 1))
    y = f(frequency * x) + rng.normal(0.0, noise, size=x.shape)

    def extrapolate(x_test, y_test, rng):
        width = high - low
        side = rng.choice([-1.0, 1.0], size=x_test.shape)
        x_far = np.where(side > 0, high, low) + side * rng.uniform(
            0, 0.5 * width, size=x_test.shape
        )
        y_far = f(frequency * x_far) + rng.normal(0.0, noise, size=x_far.shape)
        return x_far.astype(np.float32), y_far.astype(np.float32)

    return make_dataset(
        "sine", x, y, task="regression", seed=seed, shifts={"extrapolate": extrapolate}, **split
    )


def moons(*, seed: int, n: int = 1000, noise: float = 0.2, **split) -> Dataset:
    """Two interleaving half circles in the plane: binary, not linearly separable."""
    x, y = sk.make_moons(n_samples=n, noise=noise, random_state=seed)
    return make_dataset("moons", x, y, task="binary", seed=seed, shifts=shifts.PLANE, **split)


def circles(
    *, seed: int, n: int = 1000, noise: float = 0.1, factor: float = 0.5, **split
) -> Dataset:
    """A circle inside a circle (radius ratio `factor`): binary, needs a non-linear boundary."""
    x, y = sk.make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return make_dataset("circles", x, y, task="binary", seed=seed, shifts=shifts.PLANE, **split)


def spirals(
    *, seed: int, n: int = 1500, arms: int = 3, noise: float = 0.05, turns: float = 1.0, **split
) -> Dataset:
    """`arms` interleaved spirals, one class each, winding `turns` times: multiclass."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % arms
    radius = rng.uniform(0.05, 1.0, size=n)
    angle = 2 * np.pi * (turns * radius + label / arms)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise, size=x.shape)
    task = "binary" if arms == 2 else "multiclass"
    return make_dataset("spirals", x, label, task=task, seed=seed, shifts=shifts.PLANE, **split)
