"""Sequence-to-sequence toy tasks generated on the spot: copy, reverse, sort, and addition.

Each example is one string `source=target` over the characters 0-9 + =, fed to the
model as next-token prediction: x is the string without its last character, y the
string shifted by one with the source steps set to -100, so the loss counts the
target only. A causal model then learns p(target | source) (teacher forcing); at
evaluation the target is decoded greedily, one token at a time, and `exact` is the
share of examples whose whole target is right. Sources of one task share one length,
so every example has the same shape.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dlrun.data.text import IGNORE, TokenDataset, refuse_unsupported, subsample
from dlrun.errors import UserError

VOCAB = "0123456789+="
SEP = VOCAB.index("=")
PLUS = VOCAB.index("+")


def _unique_rows(a: np.ndarray) -> np.ndarray:
    _, first = np.unique(a, axis=0, return_index=True)
    return a[np.sort(first)]


def _symbols(rng, n, length, symbols):
    if not 2 <= symbols <= 10:
        raise UserError(f"data.symbols={symbols} is out of range: it must lie in [2, 10].")
    return _unique_rows(rng.integers(0, symbols, size=(n, length)))


def _pairs(rng, n, digits):
    """`n` distinct (a, b) pairs of numbers below 10**digits (all of them if there are fewer)."""
    top = 10**digits
    count = min(n, top * top)
    flat = rng.choice(top * top, size=count, replace=False)
    return flat // top, flat % top


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Numbers as rows of their zero-padded decimal digits, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1)
    return (values[:, None] // powers) % 10


def _examples(task: str, rng, n: int, length: int, symbols: int, digits: int):
    if task == "add":
        a, b = _pairs(rng, n, digits)
        plus = np.full((len(a), 1), PLUS)
        source = np.concatenate([_digits(a, digits), plus, _digits(b, digits)], axis=1)
        return source, _digits(a + b, digits + 1)
    source = _symbols(rng, n, length, symbols)
    target = {"copy": source, "reverse": source[:, ::-1], "sort": np.sort(source, axis=1)}[task]
    return source, target


def _make(
    task: str,
    *,
    seed: int,
    n: int,
    length: int,
    symbols: int,
    digits: int,
    n_train,
    val_fraction,
    test_fraction,
    label_noise,
    test_shift,
    train_shift_fraction=0.0,
) -> TokenDataset:
    refuse_unsupported(task, label_noise, test_shift, train_shift_fraction)
    rng = np.random.default_rng(seed)
    source, target = _examples(task, rng, n, length, symbols, digits)
    s = source.shape[1]
    full = np.concatenate([source, np.full((len(source), 1), SEP), target], axis=1).astype(np.int64)
    x = full[:, :-1]
    y = full[:, 1:].copy()
    y[:, :s] = IGNORE  # only the target is predicted; "=" and the source just condition it
    index = np.arange(len(x))
    rest, test = train_test_split(index, test_size=test_fraction, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction, random_state=seed + 1)
    x_train, y_train = subsample(x[train], y[train], n_train, seed, task)

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    return TokenDataset(
        name=task,
        task="seq2seq",
        n_classes=len(VOCAB),
        vocab=VOCAB,
        source_length=s,
        x_train=tensor(x_train),
        y_train=tensor(y_train),
        x_val=tensor(x[val]),
        y_val=tensor(y[val]),
        x_test=tensor(x[test]),
        y_test=tensor(y[test]),
    )


def copy(*, seed: int, n: int = 5000, length: int = 8, symbols: int = 10, **split) -> TokenDataset:
    """`3141=3141`: repeat the source."""
    return _make("copy", seed=seed, n=n, length=length, symbols=symbols, digits=0, **split)


def reverse(
    *, seed: int, n: int = 5000, length: int = 8, symbols: int = 10, **split
) -> TokenDataset:
    """`3141=1413`: the source backwards."""
    return _make("reverse", seed=seed, n=n, length=length, symbols=symbols, digits=0, **split)


def sort(*, seed: int, n: int = 5000, length: int = 8, symbols: int = 10, **split) -> TokenDataset:
    """`3141=1134`: the source's symbols in ascending order."""
    return _make("sort", seed=seed, n=n, length=length, symbols=symbols, digits=0, **split)


def add(*, seed: int, n: int = 5000, digits: int = 3, **split) -> TokenDataset:
    """`042+317=0359`: the sum of two zero-padded numbers, digit by digit."""
    if not 1 <= digits <= 9:
        raise UserError(f"data.digits={digits} is out of range: it must lie in [1, 9].")
    return _make("add", seed=seed, n=n, length=0, symbols=10, digits=digits, **split)
