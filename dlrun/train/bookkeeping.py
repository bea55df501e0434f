"""What `fit` keeps besides the weights: the run's best epoch, its checkpoints, and the
gradient norms it samples.

`Bookkeeping` is the run's memory between epochs: the epoch it starts after (a resumed
run's), the lowest validation loss so far and its epoch, and the checkpoints that let
`trainer.resume` continue it. `GradNorms` measures the global gradient norm on some steps
and sums it on the device, so no step waits for it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dlrun.records import EpochRow
from dlrun.train.checkpoint import restore_rng, rng_state, save_atomic
from dlrun.train.components import Components

# the gradient norm is sampled on every 16th optimizer step of the run, and at least every
# 4th epoch (every step when clipping needs it): it costs several kernel launches, 30-45 us
# on a CPU, 1-2% of a 4-step MNIST-1D epoch if sampled in each. An epoch's grad_norm is the
# mean of its samples; an epoch without one has none.
NORM_EVERY, NORM_EPOCHS = 16, 4


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all `tensors` together (one device), as torch.nn.utils.get_total_norm
    computes it, but in one `_foreach_norm` call: on a CPU get_total_norm loops over the
    tensors in Python, which cost 3.7% of a batch-1000 MLP epoch here against 2.0%."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tensors)))


class GradNorms:
    """The global gradient norm of the steps it samples, summed over an epoch on the device."""

    def __init__(self, params: list[torch.Tensor], steps_per_epoch: int, clipping: bool,
                 wanted: bool):
        self.params = params
        sampled = min(NORM_EVERY, NORM_EPOCHS * steps_per_epoch) if wanted else 0  # 0: never
        self.every = 1 if clipping else sampled  # clipping needs the norm of every step
        self.total: torch.Tensor | None = None
        self.count = 0

    def new_epoch(self, device: torch.device) -> None:
        self.total, self.count = torch.zeros((), device=device), 0

    def due(self, run_step: int) -> bool:
        return bool(self.every) and run_step % self.every == 0

    def measure(self) -> torch.Tensor:
        """The norm of the gradients just computed (a device tensor), added to the epoch's sum."""
        norm = global_norm([p.grad for p in self.params if p.grad is not None])
        self.total += norm
        self.count += 1
        return norm

    def mean(self) -> torch.Tensor | None:
        """The epoch's mean sampled norm, or None when no step of it was sampled."""
        return self.total / self.count if self.count else None


class Bookkeeping:
    """Where the run starts, its best epoch so far, and its checkpoints (`directory`, or none).

    last.pt holds what a resumed run needs: model, optimizer, scheduler and RNG states,
    the epoch, the best validation loss and epoch, and early stopping's state; best.pt the
    best epoch's weights. Old runs' checkpoints have exactly these keys.
    """

    def __init__(self, run: Components, generator: torch.Generator, directory: Path | None,
                 resume: dict | None):
        self.run, self.generator, self.directory = run, generator, directory
        self.start_epoch, self.best_val, self.best_epoch = 0, math.inf, 0
        if resume is None:
            self.save(0, improved=False)  # even a run stopped in its first epoch can be resumed
        else:
            self._restore(resume)

    def _restore(self, state: dict) -> None:
        run = self.run
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"], self.generator)
        self.start_epoch = state["epoch"]
        self.best_val, self.best_epoch = state["best_val_loss"], state["best_epoch"]
        if run.stopper is not None and "early_stopping" in state:
            run.stopper.load_state_dict(state["early_stopping"])

    def record(self, row: EpochRow) -> bool:
        """Whether `row` is the best epoch so far (a non-finite one never is); the row learns
        the best epoch."""
        improved = not row.non_finite and row.loss("val") < self.best_val
        if improved:
            self.best_val, self.best_epoch = row.loss("val"), row.epoch
        row.best_epoch = self.best_epoch
        return improved

    def save(self, epoch: int, improved: bool) -> None:
        """last.pt after `epoch`, and best.pt when it `improved` on every earlier epoch."""
        if self.directory is None:
            return
        run = self.run
        state = {
            "epoch": epoch,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "rng": rng_state(self.generator),
            "best_val_loss": self.best_val,
            "best_epoch": self.best_epoch,
        }
        if run.stopper is not None:
            state["early_stopping"] = run.stopper.state_dict()
        save_atomic(state, self.directory / "last.pt")
        if improved:
            best = {"epoch": epoch, "model": state["model"], "val_loss": self.best_val}
            save_atomic(best, self.directory / "best.pt")
