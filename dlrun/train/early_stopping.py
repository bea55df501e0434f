"""Early stopping: stop when the validation loss stops improving, and keep the best weights.

The best weights are copied on the device whenever the validation loss improves (no host
round trip); `restore` puts them back at the end of training.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    """Stop after `patience` epochs in which the validation loss did not beat the best by `min_delta`."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0, restore_best: bool = True):
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.best_loss = math.inf
        self.best_epoch = 0
        self.waited = 0
        self.stopped_epoch: int | None = None
        self.restored = False
        self._best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Record this epoch's validation loss; True when training should stop now."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, epoch, 0
            if self.restore_best:
                self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.waited += 1
        if self.waited >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights (when asked to and when there was a best epoch)."""
        if self.restore_best and self._best_state is not None:
            model.load_state_dict(self._best_state)
            self.restored = True

    def state_dict(self) -> dict:
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "waited": self.waited,
            "best_state": self._best_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
        self.waited, self._best_state = state["waited"], state["best_state"]

    def summary(self) -> dict:
        """What summary.json records: when it stopped (null: it ran every epoch) and what it kept."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_loss,
            "restored_best": self.restored,
        }
