"""Datasets, each a function `name(*, seed, **knobs) -> Dataset` that configs name by `_target_`."""

from dlrun.data.dataset import Dataset, make_dataset
from dlrun.data.files import csv, npz
from dlrun.data.images import cifar10, fashion_mnist, mnist
from dlrun.data.sequences import adding, mnist1d, parity
from dlrun.data.synthetic import circles, moons, sine, spirals
from dlrun.data.tabular import breast_cancer, diabetes, digits, iris, wine

__all__ = [
    "Dataset",
    "adding",
    "breast_cancer",
    "cifar10",
    "circles",
    "csv",
    "diabetes",
    "digits",
    "fashion_mnist",
    "iris",
    "make_dataset",
    "mnist",
    "mnist1d",
    "moons",
    "npz",
    "parity",
    "sine",
    "spirals",
    "wine",
]
