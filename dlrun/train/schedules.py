"""Learning-rate schedules: torch.optim.lr_scheduler classes, sized from the run at build time.

Schedules that span the run (onecycle, warmup_cosine, cosine) need its length, which
depends on the data: a `total_steps` or `T_max` left null in the config is filled in here
with the number of times the loop will step the schedule (trainer.epochs, or
trainer.epochs x steps per epoch for `interval: step`).
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, ReduceLROnPlateau, SequentialLR

from dlrun.errors import UserError

RUN_LENGTH_KEYS = ("total_steps", "T_max")


def build_scheduler(
    cfg: DictConfig, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler, str]:
    """The scheduler and how often to step it ("epoch" or "step")."""
    knobs = OmegaConf.to_container(cfg, resolve=True)
    interval = knobs.pop("interval", "epoch")
    total = epochs * (steps_per_epoch if interval == "step" else 1)
    for key in RUN_LENGTH_KEYS:
        if key in knobs and knobs[key] is None:
            knobs[key] = total
    partial = instantiate(knobs)
    if interval == "step" and getattr(partial, "func", None) is ReduceLROnPlateau:
        raise UserError(
            "sched=plateau reads the validation loss, which exists once per epoch; "
            "drop sched.interval=step (plateau needs sched.interval=epoch)."
        )
    try:
        return partial(optimizer), interval
    except ValueError as error:  # torch's own checks, e.g. onecycle's pct_start
        raise UserError(
            f"sched: the schedule rejects these settings ({error}); change the sched.* overrides."
        ) from None


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup: float,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over W steps, then cosine decay over the remaining total_steps - W.

    lr(t) = lr * (start_factor + (1 - start_factor) * t / W)                    for t <= W
    lr(t) = eta_min + (lr - eta_min) * (1 + cos(pi * (t - W) / (total - W))) / 2  for t >= W
    with W = warmup * total_steps when warmup < 1, else warmup steps.
    """
    warmup_steps = round(warmup * total_steps) if warmup < 1 else int(warmup)
    if warmup_steps >= total_steps:
        raise UserError(
            f"sched.warmup={warmup} is {warmup_steps} steps, the whole run of {total_steps}; "
            f"use a fraction below 1 (e.g. sched.warmup=0.1) or fewer steps than {total_steps}."
        )
    decay = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    if warmup_steps == 0:
        return decay
    warm = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warm, decay], milestones=[warmup_steps])
