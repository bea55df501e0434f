"""What the dataset's task implies: the metrics to report, summed chunk by chunk on the device.

The loss comes from the `loss` group (`dlrun.train.losses`); `loss=auto` picks the
task's own. Whatever the loss, the reported metric stays the task's: accuracy for
classification (over labelled steps for per-step labels), MAE and R^2 for regression,
and for seq2seq also `exact`: the share of examples whose whole target greedy decoding
gets right.
"""

from __future__ import annotations

import torch

from dlrun.train.losses import IGNORE, Loss, auto

METRICS = {
    "regression": ("mae", "r2"),
    "binary": ("acc",),
    "multiclass": ("acc",),
    "seq2seq": ("acc", "exact"),
}


def loss_fn(task: str) -> Loss:
    """The task's default loss (what `loss=auto` builds), for callers without a loss config."""
    return auto(task=task)


def loss_sums(
    task: str, out: torch.Tensor, y: torch.Tensor, loss: Loss | None = None
) -> dict[str, torch.Tensor]:
    """Per-chunk sums that add up to a split's metrics; all stay on the device."""
    loss = loss or loss_fn(task)
    sums = {"loss": loss.per_example(out, y).sum()}
    if task == "regression":
        error = out - y
        sums["abs"] = error.abs().mean(dim=1).sum()
        sums["sse"] = error.square().sum()
        return sums
    labelled = y != IGNORE
    sums["correct"] = ((loss.predict(out) == y) & labelled).sum()
    sums["labelled"] = labelled.sum()
    return sums


def finish_metrics(
    task: str, sums: dict[str, torch.Tensor], y: torch.Tensor
) -> dict[str, torch.Tensor]:
    n = len(y)
    metrics = {"loss": sums["loss"] / n}
    if task == "regression":
        metrics["mae"] = sums["abs"] / n
        total = (y - y.mean(dim=0)).square().sum().clamp_min(1e-12)
        metrics["r2"] = 1 - sums["sse"] / total
    else:
        metrics["acc"] = sums["correct"] / sums["labelled"].clamp_min(1)
    if "exact" in sums:
        metrics["exact"] = sums["exact"] / n
    return metrics
