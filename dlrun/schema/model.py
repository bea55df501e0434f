"""Schemas of the `model` group. Input and output sizes come from the data, not from here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LinearConfig:
    _target_: str = "dlrun.models.Linear"


@dataclass
class LogisticConfig:
    _target_: str = "dlrun.models.Logistic"


@dataclass
class MLPConfig:
    _target_: str = "dlrun.models.MLP"
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    activation: str = "relu"  # relu | sigmoid | tanh | leaky_relu | elu | selu | gelu | softplus
    dropout: float = 0.0
    batchnorm: bool = False
    init: str = "default"  # default | xavier | kaiming | normal
    init_std: float = 0.01  # the std of init=normal


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
    hidden: int = 128  # width of the classifier's hidden layer; 0: none
    residual: bool = False  # add each block's input to its output
    activation: str = "relu"
    init: str = "default"
    init_std: float = 0.01


@dataclass
class RecurrentConfig:
    _target_: str = "dlrun.models.Recurrent"
    cell: str = "lstm"  # rnn | lstm | gru
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    readout: str = "last"  # many-to-one: last | mean


@dataclass
class TransformerConfig:
    _target_: str = "dlrun.models.Transformer"
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    feedforward: int = 256
    dropout: float = 0.0
    positional: str = "sinusoidal"  # sinusoidal | learned | none
    causal: bool = False
    readout: str = "mean"  # many-to-one: mean | last


@dataclass
class Seq2SeqConfig:
    _target_: str = "dlrun.models.Seq2Seq"
    cell: str = "gru"  # rnn | lstm | gru
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0


SCHEMAS = {
    "_schema_model_linear": LinearConfig,
    "_schema_model_logistic": LogisticConfig,
    "_schema_model_mlp": MLPConfig,
    "_schema_model_cnn": CNNConfig,
    "_schema_model_recurrent": RecurrentConfig,
    "_schema_model_transformer": TransformerConfig,
    "_schema_model_seq2seq": Seq2SeqConfig,
}
