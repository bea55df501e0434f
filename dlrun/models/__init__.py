"""Models. Each takes `input_shape` and `out_features` from the data, plus its own knobs."""

from dlrun.models.cnn import CNN
from dlrun.models.linear import Linear
from dlrun.models.mlp import MLP

__all__ = ["CNN", "MLP", "Linear"]
