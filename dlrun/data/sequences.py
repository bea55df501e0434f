"""Sequence datasets, shaped (N, T, F): batch first, features last.

`adding` and `parity` are the classic RNN probes (long-range dependencies, vanishing
gradients); `mnist1d` is Greydanus' MNIST-1D, generated here with the `mnist1d`
package's own generator (never its download path), cached as .npz.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from dlrun.data.dataset import Dataset, make_dataset
from dlrun.errors import UserError

# --- the adding problem -----------------------------------------------------------


def _adding_arrays(n: int, length: int, rng: np.random.Generator, high: float = 1.0):
    """Values in [0, high) and two markers, one in each half; the target is the marked sum."""
    values = rng.uniform(0.0, high, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    target = (values * markers).sum(axis=1, keepdims=True)
    return np.stack([values, markers], axis=-1), target


def adding(*, seed: int, n: int = 2000, length: int = 50, **split) -> Dataset:
    """The adding problem: x (N, length, 2) = (value, marker); y = sum of the 2 marked values.

    Predicting the mean (1.0) scores MSE 1/6 in raw units; a model must carry the first
    marked value across about `length`/2 steps, where plain RNNs' gradients vanish.
    Test shifts: `noise` (values get N(0, 0.2^2) noise, targets stay clean), `scale`
    (values drawn from [0, 2): sums beyond the training range).
    """
    if length < 2:
        raise UserError(
            f"data.length={length} is too short; the adding problem needs data.length>=2."
        )
    rng = np.random.default_rng(seed)
    x, y = _adding_arrays(n, length, rng)

    def noise(x_test, y_test, rng):
        noisy = x_test.copy()
        noisy[..., 0] += rng.normal(0.0, 0.2, size=noisy[..., 0].shape)
        return noisy, y_test

    def scale(x_test, y_test, rng):
        return _adding_arrays(len(x_test), length, rng, high=2.0)

    return make_dataset(
        "adding",
        x,
        y,
        task="regression",
        seed=seed,
        standardize=None,
        shifts={"noise": noise, "scale": scale},
        **split,
    )


# --- parity -------------------------------------------------------------------------


def _parity_arrays(n: int, length: int, rng: np.random.Generator, p_one: float, per_step: bool):
    bits = (rng.random(size=(n, length)) < p_one).astype(np.int64)
    running = np.cumsum(bits, axis=1) % 2  # parity of every prefix
    labels = running if per_step else running[:, -1]
    return bits[..., None].astype(np.float32), labels


def parity(
    *, seed: int, n: int = 2000, length: int = 8, per_step: bool = False, **split
) -> Dataset:
    """Is the number of ones in a bit sequence odd? x (N, length, 1) of 0/1.

    Binary (y of shape (N,)), or with `per_step` the parity of every prefix, a label per
    step (y of shape (N, length), two classes, cross-entropy over steps).
    Test shifts: `noise` (bits get N(0, 0.3^2) noise, labels stay those of the clean bits),
    `density` (ones appear with probability 0.8 instead of 0.5).
    """
    if length < 1:
        raise UserError(f"data.length={length} is too short; use data.length>=1.")
    rng = np.random.default_rng(seed)
    x, y = _parity_arrays(n, length, rng, 0.5, per_step)

    def noise(x_test, y_test, rng):
        return x_test + rng.normal(0.0, 0.3, size=x_test.shape), y_test

    def density(x_test, y_test, rng):
        return _parity_arrays(len(x_test), length, rng, 0.8, per_step)

    return make_dataset(
        "parity",
        x,
        y,
        task="multiclass" if per_step else "binary",
        n_classes=2,
        seed=seed,
        standardize=None,
        shifts={"noise": noise, "density": density},
        **split,
    )


# --- MNIST-1D -----------------------------------------------------------------------


def _run_generator(args: dict) -> dict[str, np.ndarray]:
    """The mnist1d package's generator; it reseeds numpy's and Python's global RNGs, so we
    put them back afterwards."""
    from mnist1d.data import make_dataset as generate
    from mnist1d.utils import ObjectView

    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        made = generate(ObjectView(dict(args)))
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {key: np.asarray(made[key]) for key in ("x", "y", "x_test", "y_test")}


def _cached(args: dict, cache_dir: str | None) -> dict[str, np.ndarray]:
    """Generated arrays, kept in `cache_dir` as .npz keyed by the generator's arguments."""
    if cache_dir is None:
        return _run_generator(args)
    key = json.dumps({**args, "mnist1d": metadata.version("mnist1d")}, sort_keys=True)
    path = (
        Path(cache_dir).expanduser()
        / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    )
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache entry is simply generated again
    arrays = _run_generator(args)
    try:  # write then rename: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".mnist1d-", suffix=".npz")
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(partial, path)
    except OSError:  # an unwritable cache only costs time
        if "partial" in locals() and os.path.exists(partial):
            os.remove(partial)
    return arrays


def mnist1d(
    *,
    seed: int,
    n: int = 5000,
    generator_seed: int = 42,
    shuffle_seq: bool = False,
    cache_dir: str | None = None,
    **split,
) -> Dataset:
    """MNIST-1D: 10 digit templates as 40-step 1-D signals, padded, scaled, translated,
    sheared and noised. x (N, 40, 1); the generator's own 80/20 split is the test split.

    The defaults (n=5000, generator_seed=42) are the paper's dataset. `shuffle_seq`
    permutes the time axis (the paper's spatial-structure ablation).
    Test shifts: `noise` (test set generated with 3x correlated and 5x i.i.d. noise),
    `flip` (signals reversed in time).
    """
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url")  # the download path is never used
    args.update(num_samples=n, seed=generator_seed, shuffle_seq=shuffle_seq)
    arrays = _cached(args, cache_dir)

    def noise(x_test, y_test, rng):
        noisy = {
            **args,
            "num_samples": len(x_test),
            "train_split": 0.0,
            "seed": generator_seed + 1,
            "corr_noise_scale": 3 * args["corr_noise_scale"],
            "iid_noise_scale": 5 * args["iid_noise_scale"],
        }
        made = _cached(noisy, cache_dir)
        return made["x_test"][..., None], made["y_test"]

    def flip(x_test, y_test, rng):
        return x_test[:, ::-1].copy(), y_test

    return make_dataset(
        "mnist1d",
        arrays["x"][..., None],
        arrays["y"],
        task="multiclass",
        seed=seed,
        test=(arrays["x_test"][..., None], arrays["y_test"]),
        n_classes=10,
        standardize="last",
        shifts={"noise": noise, "flip": flip},
        **split,
    )
