"""Schemas of the `data` group: the knobs every dataset shares, then each one's own."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class DataConfig:
    _target_: str = MISSING
    n_train: int | None = None  # subsample the training split to this many examples
    val_fraction: float = 0.2  # share of the training distribution held out for validation
    test_fraction: float = 0.2  # share held out for test (datasets without a test set)
    label_noise: float = 0.0  # fraction of training labels replaced by random ones
    test_shift: str | None = None  # build the test split from a shifted distribution


@dataclass
class DigitsConfig(DataConfig):
    _target_: str = "dlrun.data.digits"
    flat: bool = False  # 64 features instead of a 1x8x8 image


@dataclass
class SineConfig(DataConfig):
    _target_: str = "dlrun.data.sine"
    n: int = 1000
    noise: float = 0.1
    low: float = -3.0
    high: float = 3.0
    frequency: float = 1.0


SCHEMAS = {
    "_schema_data_digits": DigitsConfig,
    "_schema_data_sine": SineConfig,
}
