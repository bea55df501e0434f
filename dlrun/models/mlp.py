"""A fully connected network: [Linear, (BatchNorm), activation, (Dropout)] per hidden width."""

from __future__ import annotations

from torch import nn

from dlrun.models.layers import activation as make_activation
from dlrun.models.layers import flat_size, initialize


class MLP(nn.Sequential):
    outputs = "logits"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        out_features: int,
        hidden: list[int] = (128, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        init: str = "default",
        init_std: float = 0.01,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = flat_size(input_shape)
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batchnorm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        initialize(self, init, activation, init_std)
