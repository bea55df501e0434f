"""Whole-split evaluation in inference mode, in large chunks, with no host sync per step."""

from __future__ import annotations

import torch
from torch import nn

from dlrun.data.batches import chunks
from dlrun.train.generate import exact_matches
from dlrun.train.losses import Loss
from dlrun.train.task import finish_metrics, loss_sums


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    chunk: int,
    loss: Loss | None = None,
) -> dict:
    """Loss (`loss`, or the task's default) and task metric over a whole split, as 0-d device tensors.

    seq2seq also decodes every example greedily for the exact-match metric (one host read
    per chunk: where the targets start, so the source steps cost no model calls).
    """
    was_training = model.training
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    for xb, yb in chunks(x, y, chunk):
        sums = loss_sums(task, model(xb), yb, loss)
        if task == "seq2seq":
            sums["exact"] = exact_matches(model, xb, yb)
        for key, value in sums.items():
            totals[key] = totals[key] + value if key in totals else value
    model.train(was_training)
    return finish_metrics(task, totals, y)
