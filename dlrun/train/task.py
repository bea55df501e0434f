"""What the dataset's task implies: the loss to train on and the metrics to report."""

from __future__ import annotations

import torch
from torch.nn import functional as F

METRICS = {"regression": ("mae", "r2"), "binary": ("acc",), "multiclass": ("acc",)}


def loss_fn(task: str):
    """Mean loss of a batch: MSE, BCE with logits, or cross-entropy."""
    if task == "regression":
        return F.mse_loss
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())
    return F.cross_entropy


def loss_sums(task: str, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-chunk sums that add up to a split's metrics; all stay on the device."""
    if task == "regression":
        error = out - y
        return {
            "loss": error.square().mean(dim=1).sum(),
            "abs": error.abs().mean(dim=1).sum(),
            "sse": error.square().sum(),
        }
    if task == "binary":
        logit = out.squeeze(-1)
        return {
            "loss": F.binary_cross_entropy_with_logits(logit, y.float(), reduction="sum"),
            "correct": ((logit > 0).long() == y).sum(),
        }
    return {
        "loss": F.cross_entropy(out, y, reduction="sum"),
        "correct": (out.argmax(dim=1) == y).sum(),
    }


def finish_metrics(task: str, sums: dict[str, torch.Tensor], y: torch.Tensor) -> dict[str, torch.Tensor]:
    n = len(y)
    metrics = {"loss": sums["loss"] / n}
    if task == "regression":
        metrics["mae"] = sums["abs"] / n
        total = (y - y.mean(dim=0)).square().sum().clamp_min(1e-12)
        metrics["r2"] = 1 - sums["sse"] / total
    else:
        metrics["acc"] = sums["correct"] / n
    return metrics
