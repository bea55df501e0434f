"""Linear models: one affine map from the flattened input to the outputs.

`linear` emits raw scores: with the regression losses it is linear regression, with
BCE/cross-entropy it is logistic/softmax regression (the loss applies the sigmoid or
softmax, fused with the log for numerical stability). `logistic` is the same map with
the sigmoid/softmax written out as the model's last layer, as the notes draw it; it
outputs probabilities, so it sets `outputs = "probabilities"` and the loss turns them
back into log-odds / log-probabilities before computing BCE / NLL.
"""

from __future__ import annotations

from torch import nn

from dlrun.models.layers import flat_size


class Linear(nn.Sequential):
    outputs = "logits"

    def __init__(self, input_shape: tuple[int, ...], out_features: int):
        super().__init__(nn.Flatten(), nn.Linear(flat_size(input_shape), out_features))


class Logistic(nn.Sequential):
    """Affine map then an explicit head: sigmoid for one output, softmax for several."""

    outputs = "probabilities"

    def __init__(self, input_shape: tuple[int, ...], out_features: int):
        head = nn.Sigmoid() if out_features == 1 else nn.Softmax(dim=-1)
        super().__init__(nn.Flatten(), nn.Linear(flat_size(input_shape), out_features), head)
