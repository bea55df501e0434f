"""Models. Each takes `input_shape` and `out_features` from the data, plus its own knobs."""

from dlrun.models.build import build_model, param_counts
from dlrun.models.cnn import CNN
from dlrun.models.linear import Linear, Logistic
from dlrun.models.mlp import MLP
from dlrun.models.recurrent import Recurrent
from dlrun.models.transformer import Transformer

__all__ = ["CNN", "MLP", "Linear", "Logistic", "Recurrent", "Transformer", "build_model",
           "param_counts"]
