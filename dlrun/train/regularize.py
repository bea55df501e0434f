"""Explicit weight penalties added to the training objective (biases are not penalized).

`reg=l1`, `reg=l2` and `reg=elastic` each contribute coefficients; together they make one
penalty l1 * sum|w| + l2 * sum w^2 over weight matrices and kernels (parameters with two
or more dimensions: not biases, not batch-norm scales).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn


def weight_penalty(l1: float = 0.0, l2: float = 0.0) -> Callable[[nn.Module], torch.Tensor] | None:
    """l1 * sum|w| + l2 * sum w^2 over weight matrices and kernels; None when both are 0."""
    if l1 == 0 and l2 == 0:
        return None

    def penalty(model: nn.Module) -> torch.Tensor:
        weights = [p for p in model.parameters() if p.ndim >= 2 and p.requires_grad]
        total = next(model.parameters()).new_zeros(())
        for w in weights:
            if l1:
                total = total + l1 * w.abs().sum()
            if l2:
                total = total + l2 * w.square().sum()
        return total

    return penalty


def penalty_coefficients(reg: DictConfig | None) -> tuple[float, float]:
    """(l1, l2) summed over the chosen penalties: reg.l1, reg.l2 and reg.elastic."""

    def knob(key: str) -> float:
        return float(OmegaConf.select(reg, key, default=0.0) or 0.0) if reg is not None else 0.0

    elastic, ratio = knob("elastic.strength"), knob("elastic.l1_ratio")
    return knob("l1.strength") + elastic * ratio, knob("l2.strength") + elastic * (1 - ratio)


def penalty_from_config(reg: DictConfig | None) -> Callable[[nn.Module], torch.Tensor] | None:
    """The penalty the `reg` config asks for, or None."""
    return weight_penalty(*penalty_coefficients(reg))
