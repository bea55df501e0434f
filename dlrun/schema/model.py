"""Schemas of the `model` group. Input and output sizes come from the data, not from here."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import FRACTION, POSITIVE, Rule, at_least, knob

WIDTHS = Rule(lambda v: all(w >= 1 for w in v), "must list widths >= 1, e.g. model.hidden=[128,64]")
CHANNELS = Rule(lambda v: len(v) >= 1 and all(c >= 1 for c in v),
                "must list one or more channel counts >= 1, e.g. model.channels=[32,64]")
POSITIVE_INT = at_least(1)


def _dropout(where: str):
    """The model's dropout follows reg.dropout.p, so `reg=dropout` sets it."""
    return knob("${oc.select:reg.dropout.p,0.0}", f"dropout probability {where}; follows "
                "reg.dropout.p (reg=dropout sets it)", FRACTION)


def _activation():
    return knob("relu", "relu | sigmoid | tanh | leaky_relu | elu | selu | gelu | softplus",
                common=True)


def _init():
    return knob("default", "default (torch's) | xavier | kaiming | normal (with init_std)")


def _init_std():
    return knob(0.01, "the std of init=normal", POSITIVE)


def _hidden_size(default: int):
    return knob(default, "units of the recurrent state", POSITIVE_INT)


def _num_layers():
    return knob(1, "stacked recurrent layers", POSITIVE_INT)


def _cell(default: str):
    return knob(default, "rnn | lstm | gru")


@dataclass
class LinearConfig:
    _target_: str = "dlrun.models.Linear"


@dataclass
class LogisticConfig:
    _target_: str = "dlrun.models.Logistic"


@dataclass
class MLPConfig:
    _target_: str = "dlrun.models.MLP"
    hidden: list[int] = knob([128, 128], "the hidden layers' widths", WIDTHS, common=True)
    activation: str = _activation()
    dropout: float = _dropout("after each hidden layer")
    batchnorm: bool = knob(False, "batch normalization before each activation")
    init: str = _init()
    init_std: float = _init_std()


@dataclass
class CNNConfig:
    _target_: str = "dlrun.models.CNN"
    channels: list[int] = knob([32, 64], "output channels of each conv block", CHANNELS)
    kernel_size: int = knob(3, "the filters' size", POSITIVE_INT)
    stride: int = knob(1, "the filters' stride", POSITIVE_INT)
    padding: int = knob(1, "zero padding on each side", at_least(0))
    pool: str = knob("max", "max | avg | none (a 2x pool after each block)")
    batchnorm: bool = knob(True, "batch normalization in each block")
    dropout: float = _dropout("in the classifier head")
    hidden: int = knob(128, "classifier hidden width; 0: global pool straight to the outputs",
                       at_least(0, " (0: no hidden layer)"), common=True)
    residual: bool = knob(False, "add each block's input (projected when shapes differ); needs "
                          "padding=(kernel_size-1)/2")
    activation: str = _activation()
    init: str = _init()
    init_std: float = _init_std()


@dataclass
class RecurrentConfig:
    _target_: str = "dlrun.models.Recurrent"
    cell: str = _cell("lstm")
    hidden_size: int = _hidden_size(64)
    num_layers: int = _num_layers()
    bidirectional: bool = knob(False, "read the sequence both ways")
    dropout: float = _dropout("between stacked layers and before the readout")
    readout: str = knob("last", "many-to-one: last (final hidden state) | mean (over steps)")


@dataclass
class TransformerConfig:
    _target_: str = "dlrun.models.Transformer"
    d_model: int = knob(64, "the width of every step's vector", POSITIVE_INT)
    heads: int = knob(4, "attention heads (d_model must be a multiple)", POSITIVE_INT)
    layers: int = knob(2, "encoder blocks", POSITIVE_INT)
    feedforward: int = knob(256, "width of each block's feed-forward layer", POSITIVE_INT)
    dropout: float = _dropout("in every block")
    positional: str = knob("sinusoidal", "sinusoidal | learned | none")
    causal: bool = knob(False, "true: each step attends to earlier steps only (next-step prediction)")
    readout: str = knob("mean", "many-to-one: mean (over steps) | last")


@dataclass
class Seq2SeqConfig:
    _target_: str = "dlrun.models.Seq2Seq"
    cell: str = _cell("gru")
    hidden_size: int = _hidden_size(128)
    num_layers: int = _num_layers()
    dropout: float = _dropout("between stacked layers and before the output layer")


SCHEMAS = {
    "_schema_model_linear": LinearConfig,
    "_schema_model_logistic": LogisticConfig,
    "_schema_model_mlp": MLPConfig,
    "_schema_model_cnn": CNNConfig,
    "_schema_model_recurrent": RecurrentConfig,
    "_schema_model_transformer": TransformerConfig,
    "_schema_model_seq2seq": Seq2SeqConfig,
}
