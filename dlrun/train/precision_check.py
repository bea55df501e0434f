"""Is the chosen precision slower than fp32 for this model on this device? Measured, not guessed.

Autocast to bf16 or fp16 speeds up large matrix products on hardware with fast low-precision
kernels, and slows everything else down: on this machine's CPU the default MLP trained at
10 steps/s in bf16 and 64 in fp16 against 1,564 in fp32, while a 3x32x32 CNN gained 1.85x in
bf16 (README, Performance). Which side a run is on depends on the model, the batch and the
device, so before training the run times a few forward and backward passes of a copy of its
model on one batch, in fp32 and in its precision in turns, and warns in one line when its choice is
clearly the slower one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn

from dlrun.train.accel import autocast

SLOWER = 1.2  # warn when the chosen precision takes this much longer per step than fp32
PROBE_ROWS = 1024  # at most this many rows in the timed batch
REPEATS = 5  # timed passes per precision, after one warm-up


def pass_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable,
                 precision: str, device: torch.device) -> float:
    """Seconds of one forward+backward pass of `model` on (x, y) under `precision`."""
    _sync(device)
    started = time.perf_counter()
    with autocast(device, precision)():
        loss = criterion(model(x), y)
    loss.float().backward()
    model.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - started


def step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable,
                 precisions: tuple[str, ...], device: torch.device) -> list[float]:
    """The fastest of REPEATS passes per precision, on a copy of `model` (the run's model, its
    gradients and the random number generators stay untouched). The precisions take turns
    and the minimum is kept, so other work on a busy machine hits both alike and drops out."""
    probe = copy.deepcopy(model).train()
    best = [float("inf")] * len(precisions)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for repeat in range(REPEATS + 1):
            for i, precision in enumerate(precisions):
                seconds = pass_seconds(probe, x, y, criterion, precision, device)
                if repeat > 0:  # the first round warms up kernels and caches
                    best[i] = min(best[i], seconds)
    return best


def _name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def slowdown_warning(precision: str, fp32_s: float, chosen_s: float, device: torch.device) -> str | None:
    """The one-line warning when `precision` is clearly slower than fp32, else None."""
    if precision == "32" or chosen_s <= SLOWER * fp32_s:
        return None
    return (f"trainer.precision={precision} trains this model {chosen_s / fp32_s:.1f}x slower than "
            f"fp32 on this {_name(device)} (one step {chosen_s * 1e3:.2f} ms against "
            f"{fp32_s * 1e3:.2f} ms); use trainer.precision=32")


def check_precision_speed(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: Callable,
                          precision: str, device: torch.device, batch_size: int | None) -> str | None:
    """Time the run's precision against fp32 on one batch; the warning, if it is slower."""
    if precision == "32":
        return None
    rows = min(len(x), batch_size or len(x), PROBE_ROWS)
    xb, yb = x[:rows], y[:rows]
    fp32, chosen = step_seconds(model, xb, yb, criterion, ("32", precision), device)
    return slowdown_warning(precision, fp32, chosen, device)
