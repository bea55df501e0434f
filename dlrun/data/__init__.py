"""Datasets, each a function `name(*, seed, **knobs) -> Dataset` that configs name by `_target_`."""

from dlrun.data.dataset import Dataset, make_dataset
from dlrun.data.synthetic import sine
from dlrun.data.tabular import digits

__all__ = ["Dataset", "digits", "make_dataset", "sine"]
