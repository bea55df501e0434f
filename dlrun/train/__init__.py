"""Training: the loop, evaluation, checkpoints, losses and metrics per task."""

from dlrun.train.components import Components
from dlrun.train.loop import fit

__all__ = ["Components", "fit"]
