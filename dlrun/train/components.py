"""One run's parts, as `fit` takes them: built by `dlrun.build` from the config's `_target_`s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dlrun.data import Dataset


@dataclass
class Components:
    """The data, the model and what trains it; the field names are the ones `fit` uses."""

    data: Dataset
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch.optim.lr_scheduler (ReduceLROnPlateau steps on the val loss)
    interval: str = "epoch"  # the scheduler steps per "epoch" or per "step"
    loss: Any = None  # the `loss` group's choice; None: the task's own
    penalty: Any = None  # reg=l1/l2/elastic: a function of the model added to the loss
    augment: Any = None  # reg=augment: transforms training batches only
    stopper: Any = None  # reg=early_stopping: an EarlyStopping

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
