"""The learning-rate range test (Smith 2017, "Cyclical learning rates", section 3.3).

Train from the current weights while the LR grows exponentially from `start_lr` to
`end_lr`, one mini-batch per LR, and record the loss. The loss first stays flat (LR too
small to matter), then falls, then blows up. The suggestion lies between where the loss
really falls fastest and its minimum (`dlrun.train.lr_suggest` says how, and why). The
model and optimizer are restored afterwards, so the test can probe a model that is about
to be trained.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from dlrun.data.batches import shuffled_batches
from dlrun.train.lr_suggest import suggest


@dataclass
class RangeTest:
    lrs: list[float]  # the LR of each step taken (up to and including divergence)
    losses: list[float]  # the mini-batch loss at each step
    smoothed: list[float]  # centered moving average of the finite losses
    suggestion: float | None  # the suggested LR (None: the loss never fell beyond its noise)
    suggestion_index: int | None
    steepest_index: int | None  # where the loss really falls fastest (None: it never did)
    min_index: int  # where the smoothed loss is lowest
    diverged_at: int | None  # the step whose loss exceeded diverge x the minimum (None: never)
    fall: float  # the largest fall of the smoothed loss before its minimum
    noise_floor: float  # the largest fall noise alone would reach there

    @property
    def min_loss_lr(self) -> float:
        return self.lrs[self.min_index]


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> list[float]:
    """`steps` LRs evenly spaced in log scale, from start_lr to end_lr inclusive."""
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (steps - 1)) for i in range(steps)]


def _endless(x, y, batch_size, generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from shuffled_batches(x, y, batch_size, generator)


def _first_divergence(losses: list[float], smoothing: float, diverge: float) -> int | None:
    """First step whose bias-corrected EMA loss is non-finite or above diverge x the lowest so far."""
    average, best = 0.0, math.inf
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            return i
        average = smoothing * average + (1 - smoothing) * loss
        smooth = average / (1 - smoothing ** (i + 1))
        if smooth > diverge * best:
            return i
        best = min(best, smooth)
    return None


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    batch_size: int | None,
    generator: torch.Generator,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 200,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    check_every: int = 10,
) -> RangeTest:
    """Run the test on (x, y); the host reads the losses once every `check_every` steps."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    lrs = lr_schedule(start_lr, end_lr, steps)
    recorded = torch.empty(steps, device=x.device)
    losses: list[float] = []
    diverged_at = None
    batches = _endless(x, y, batch_size, generator)
    model.train()
    try:
        for i, lr in enumerate(lrs):
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb, yb = next(batches)
            loss = criterion(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recorded[i] = loss.detach()
            if (i + 1) % check_every == 0 or i == steps - 1:
                losses = recorded[: i + 1].tolist()
                diverged_at = _first_divergence(losses, smoothing, diverge)
                if diverged_at is not None:
                    break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    end = len(losses) if diverged_at is None else diverged_at + 1
    lrs, losses = lrs[:end], losses[:end]
    finite = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses))
    found = suggest(lrs[:finite], losses[:finite])
    return RangeTest(
        lrs=lrs,
        losses=losses,
        smoothed=found.smoothed.tolist(),
        suggestion=lrs[found.index] if found.index is not None else None,
        suggestion_index=found.index,
        steepest_index=found.steepest_index,
        min_index=found.min_index,
        diverged_at=diverged_at,
        fall=found.fall,
        noise_floor=found.noise_floor,
    )
