"""Every job's metrics on a whole split in one batched pass: each chunk of rows runs through
the stacked model for all jobs at once, and the task's own per-chunk sums
(dlrun.train.task.loss_sums) are taken per job with `torch.vmap`. The chunks are the solo
run's (same rows, same order), so each job's sums add up as its solo evaluation's do."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.func import vmap

from dlrun.train.losses import Loss
from dlrun.train.stacked.batches import JobData, _fold
from dlrun.train.task import finish_metrics, loss_sums


@torch.inference_mode()
def evaluate_stack(net: nn.Module, data: JobData, split: str, task: str, chunk: int,
                   loss: Loss) -> dict[str, torch.Tensor]:
    """Loss and task metric of `split` for each job: 0-d device tensors stacked as [K]."""
    was_training = net.training
    net.eval()
    n = data.splits[split][0].shape[1]
    sums_of = vmap(partial(loss_sums, task, loss=loss))
    totals: dict[str, torch.Tensor] = {}
    for start in range(0, n, chunk):
        x, y = data.rows(split, start, start + chunk)
        out = net(_fold(x))
        sums = sums_of(out.view(*x.shape[:2], *out.shape[1:]), y)
        for key, value in sums.items():
            totals[key] = totals[key] + value if key in totals else value
    net.train(was_training)
    _, y = data.rows(split)
    return vmap(partial(finish_metrics, task))(totals, y)
