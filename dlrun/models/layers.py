"""Small shared pieces: activations and weight initializations by name, and a sequence view."""

from __future__ import annotations

import math

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


# Kaiming (He) scaling wants the gain of the activation that follows a layer; SELU wants
# LeCun scaling (gain 1), and the ReLU family's smooth cousins are close enough to ReLU.
_KAIMING_NONLINEARITY = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "selu": "linear",
}

# scheme -> (weight, activation name, std) -> None; weights are drawn from normals so
# their statistics are easy to check: xavier std = sqrt(2 / (fan_in + fan_out)),
# kaiming std = gain / sqrt(fan_in), normal std = model.init_std.
INITS = {
    "xavier": lambda w, act, std: nn.init.xavier_normal_(w),
    "kaiming": lambda w, act, std: nn.init.kaiming_normal_(
        w,
        a=0.01 if act == "leaky_relu" else 0.0,
        nonlinearity=_KAIMING_NONLINEARITY.get(act, "relu"),
    ),
    "normal": lambda w, act, std: nn.init.normal_(w, 0.0, std),
}


def initialize(model: nn.Module, scheme: str, activation: str = "relu", std: float = 0.01) -> None:
    """Re-draw every Linear/Conv weight with `scheme` and zero its bias; `default` keeps torch's."""
    if scheme == "default":
        return
    if scheme not in INITS:
        raise UserError(
            f"model.init={scheme} is unknown; choose from: default, {', '.join(INITS)}."
        )
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            INITS[scheme](module.weight, activation, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def sequence_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int]:
    """(steps, features) a sequence model reads from one example of `input_shape`.

    Sequences (T, F) are read as they are; a tabular row (F,) as F steps of one
    feature; an image (C, H, W) row by row, H steps of C*W features.
    """
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1]
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 3:
        return input_shape[1], input_shape[0] * input_shape[2]
    raise UserError(
        f"model={model} reads sequences (steps x features) but the data gives shape "
        f"{tuple(input_shape)}; use model=mlp for it."
    )


class AsSequence(nn.Module):
    """Reshape a batch to (N, T, F), the view `sequence_shape` describes."""

    def __init__(self, input_shape: tuple[int, ...]):
        super().__init__()
        self.rank = len(input_shape)

    def forward(self, x):
        if self.rank == 1:
            return x.unsqueeze(-1)
        if self.rank == 3:  # N, C, H, W -> N, H, C*W
            return x.permute(0, 2, 1, 3).flatten(2)
        return x


def flat_size(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)
