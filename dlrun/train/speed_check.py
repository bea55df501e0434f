"""Is the chosen precision, or compiling, slower for this model on this device? Measured.

Autocast to bf16 or fp16 speeds up large matrix products on hardware with fast low-precision
kernels, and slows everything else down: on this machine's CPU the default MLP trained at
10 steps/s in bf16 and 64 in fp16 against 1,564 in fp32, while a 3x32x32 CNN gained 1.85x in
bf16 (README, Performance). Which side a run is on depends on the model, the batch and the
device, so before training the run times a few forward and backward passes of a copy of its
model on one batch, in fp32 and in its precision in turns, and warns in one line when its choice is
clearly the slower one.

`trainer.compile=true` is judged after its first compiled epoch (the one before pays for the
compilation): a compiled training step against eager steps of a copy of the model with a
fresh optimizer of the same kind, timed before training.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import torch
from torch import nn

from dlrun.train.accel import autocast
from dlrun.train.task import loss_fn

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


def eager_step_seconds(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                       y: torch.Tensor, criterion: Callable, precision: str,
                       device: torch.device) -> float:
    """The fastest of REPEATS whole eager training steps (forward, backward, optimizer step)
    on a copy of `model` with a fresh optimizer of the run's kind and settings."""
    probe = copy.deepcopy(model).train()
    step = type(optimizer)(probe.parameters(), **optimizer.defaults)  # torch's optimizers take
    best = float("inf")  # their defaults back as keywords
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for repeat in range(REPEATS + 1):
            _sync(device)
            started = time.perf_counter()
            with autocast(device, precision)():
                loss = criterion(probe(x), y)
            loss.float().backward()
            step.step()
            step.zero_grad(set_to_none=True)
            _sync(device)
            if repeat > 0:
                best = min(best, time.perf_counter() - started)
    return best


def compile_warning(compiled_s: float, eager_s: float, epoch: int) -> str | None:
    """The one-line warning when compiled steps are clearly slower than eager ones, else None."""
    if compiled_s <= SLOWER * eager_s:
        return None
    return (f"trainer.compile=true: a compiled training step took {compiled_s * 1e3:.2f} ms in "
            f"epoch {epoch}, {compiled_s / eager_s:.1f}x an eager one of this model "
            f"({eager_s * 1e3:.2f} ms); use trainer.compile=false")


class SpeedCheck:
    """The run's precision and compile choices, timed against fp32 and eager on its device."""

    def __init__(self, parts, trainer, device: torch.device):
        data = parts.data
        self.rows = min(len(data.x_train), trainer.batch_size or len(data.x_train), PROBE_ROWS)
        self.x, self.y = data.x_train[: self.rows], data.y_train[: self.rows]
        self.criterion = parts.loss if parts.loss is not None else loss_fn(data.task)
        self.model, self.optimizer = parts.model, parts.optimizer
        self.precision, self.device = trainer.precision, device
        # a compiled step is compared with eager ones at the same batch size only
        self.same_batch = trainer.compile and (trainer.batch_size or len(data.x_train)) == self.rows
        self.eager_s: float | None = None

    def before_training(self) -> str | None:
        """Time eager steps for the compile check; the precision's warning, if it is slower."""
        if self.same_batch:
            try:
                self.eager_s = eager_step_seconds(self.model, self.optimizer, self.x, self.y,
                                                  self.criterion, self.precision, self.device)
            except TypeError:  # an optimizer that cannot be rebuilt from its defaults: no check
                self.eager_s = None
        if self.precision == "32":
            return None
        fp32, chosen = step_seconds(self.model, self.x, self.y, self.criterion,
                                    ("32", self.precision), self.device)
        return slowdown_warning(self.precision, fp32, chosen, self.device)

    def after_epoch(self, row, first_epoch: int) -> str | None:
        """The compile warning, judged on the first epoch after the one that compiled."""
        if self.eager_s is None or row.epoch != first_epoch + 1 or not row.steps:
            return None
        return compile_warning(row.step_time_s / row.steps, self.eager_s, row.epoch)
