"""Linear regression, or softmax/logistic regression when the loss is a cross-entropy."""

from __future__ import annotations

import math

from torch import nn


class Linear(nn.Sequential):
    def __init__(self, input_shape: tuple[int, ...], out_features: int):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), out_features))
