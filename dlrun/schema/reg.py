"""Schemas of the `reg` group; each option lives under its own key (`reg.l2.strength`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class L2Config:
    strength: float = 1e-4  # adds strength * sum(w^2) over weight matrices to the loss


@dataclass
class DropoutConfig:
    p: float = 0.5  # the model's dropout probability


SCHEMAS = {
    "_schema_reg_l2": L2Config,
    "_schema_reg_dropout": DropoutConfig,
}
