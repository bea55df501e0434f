"""Whole-split evaluation in inference mode, in large chunks, with no host sync per step.

One function for one process and for data-parallel ranks alike: a rank evaluates its
rows of the split (`rows`) and `add_up` sums the ranks' totals (an all-reduce), so every
metric, seq2seq's exact match included, is computed the same way in both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlrun.data.batches import chunks
from dlrun.train.generate import exact_matches
from dlrun.train.losses import Loss
from dlrun.train.task import finish_metrics, loss_sums

Sums = dict[str, torch.Tensor]


def _as_they_are(totals: Sums) -> Sums:
    return totals


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    chunk: int,
    loss: Loss | None = None,
    *,
    rows: slice = slice(None),
    add_up: Callable[[Sums], Sums] = _as_they_are,
) -> dict:
    """Loss (`loss`, or the task's default) and task metric over a whole split, as 0-d device tensors.

    seq2seq also decodes every example greedily for the exact-match metric (one host read
    per chunk: where the targets start, so the source steps cost no model calls).
    """
    was_training = model.training
    model.eval()
    totals: Sums = {}
    for xb, yb in chunks(x[rows], y[rows], chunk):
        sums = loss_sums(task, model(xb), yb, loss)
        if task == "seq2seq":
            sums["exact"] = exact_matches(model, xb, yb)
        for key, value in sums.items():
            totals[key] = totals[key] + value if key in totals else value
    model.train(was_training)
    return finish_metrics(task, add_up(totals), y)
