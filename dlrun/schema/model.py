"""Schemas of the `model` group. Input and output sizes come from the data, not from here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LinearConfig:
    _target_: str = "dlrun.models.Linear"


@dataclass
class MLPConfig:
    _target_: str = "dlrun.models.MLP"
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    activation: str = "relu"
    dropout: float = 0.0
    batchnorm: bool = False


@dataclass
class CNNConfig:
    _target_: str = "dlrun.models.CNN"
    channels: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    pool: str = "max"  # max | avg | none
    batchnorm: bool = True
    dropout: float = 0.0
    hidden: int = 128


SCHEMAS = {
    "_schema_model_linear": LinearConfig,
    "_schema_model_mlp": MLPConfig,
    "_schema_model_cnn": CNNConfig,
}
