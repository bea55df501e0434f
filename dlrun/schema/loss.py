"""Schemas of the `loss` group. The task comes from the data; `auto` picks the task's own loss."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import FRACTION, POSITIVE, knob


@dataclass
class AutoLossConfig:
    _target_: str = "dlrun.train.losses.auto"


@dataclass
class MSEConfig:
    _target_: str = "dlrun.train.losses.MSE"


@dataclass
class MAEConfig:
    _target_: str = "dlrun.train.losses.MAE"


@dataclass
class HuberConfig:
    _target_: str = "dlrun.train.losses.Huber"
    delta: float = knob(1.0, "squared error below delta, linear above", POSITIVE)


@dataclass
class BCEConfig:
    _target_: str = "dlrun.train.losses.BCE"


@dataclass
class CrossEntropyConfig:
    _target_: str = "dlrun.train.losses.CrossEntropy"
    label_smoothing: float = knob(
        0.0, "e: train towards (1-e) on the true class plus e/C on every class", FRACTION)


SCHEMAS = {
    "_schema_loss_auto": AutoLossConfig,
    "_schema_loss_mse": MSEConfig,
    "_schema_loss_mae": MAEConfig,
    "_schema_loss_huber": HuberConfig,
    "_schema_loss_bce": BCEConfig,
    "_schema_loss_cross_entropy": CrossEntropyConfig,
}
