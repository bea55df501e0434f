"""Explicit weight penalties added to the training objective (biases are not penalized)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def weight_penalty(l1: float = 0.0, l2: float = 0.0) -> Callable[[nn.Module], torch.Tensor] | None:
    """l1 * sum|w| + l2 * sum w^2 over weight matrices and kernels; None when both are 0."""
    if l1 == 0 and l2 == 0:
        return None

    def penalty(model: nn.Module) -> torch.Tensor:
        weights = [p for p in model.parameters() if p.ndim >= 2]
        total = weights[0].new_zeros(())
        for w in weights:
            if l1:
                total = total + l1 * w.abs().sum()
            if l2:
                total = total + l2 * w.square().sum()
        return total

    return penalty
