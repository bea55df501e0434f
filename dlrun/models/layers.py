"""Small shared pieces: activations by name."""

from __future__ import annotations

from torch import nn

from dlrun.errors import UserError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(
            f"model.activation={name} is unknown; choose from: {', '.join(ACTIVATIONS)}."
        )
    return ACTIVATIONS[name]()
