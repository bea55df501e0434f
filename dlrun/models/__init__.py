"""Models. Each takes `input_shape` and `out_features` from the data, plus its own knobs."""

from dlrun.models.build import build_model, param_counts, user_errors_unwrapped
from dlrun.models.cnn import CNN
from dlrun.models.linear import Linear, Logistic
from dlrun.models.mlp import MLP
from dlrun.models.recurrent import Recurrent
from dlrun.models.seq2seq import Seq2Seq
from dlrun.models.transformer import Transformer

__all__ = [
    "CNN",
    "MLP",
    "Linear",
    "Logistic",
    "Recurrent",
    "Seq2Seq",
    "Transformer",
    "build_model",
    "param_counts",
    "user_errors_unwrapped",
]
