"""Each job's learning-rate schedule: its own torch.optim.lr_scheduler, stepped for it alone.

dlrun.build attaches each job's scheduler to that job's own torch optimizer, as in its
solo run, so every `sched=` option (and its checkpointed state) is torch's. The stack
never steps those optimizers; it reads the learning rates their schedulers set. A
schedule stepped per optimizer step is run ahead through the epoch's steps when the
epoch starts, giving a [steps, K] table that the training steps index on the device
(no host work inside the epoch); a per-epoch one is stepped after evaluation, with the
job's own validation loss for ReduceLROnPlateau.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau


class JobSchedules:
    def __init__(self, optimizers: list[torch.optim.Optimizer], schedulers: list, interval: str,
                 device: torch.device):
        self.optimizers, self.schedulers = list(optimizers), list(schedulers)
        self.interval, self.device = interval, device

    def current(self) -> list[float]:
        """Each job's learning rate now (what its row reports for the epoch about to run)."""
        return [o.param_groups[0]["lr"] for o in self.optimizers]

    def epoch_table(self, steps: int) -> torch.Tensor:
        """The learning rate of each step of this epoch for each job: float64, [steps, K]."""
        if self.interval != "step":
            row = torch.tensor(self.current(), dtype=torch.float64, device=self.device)
            return row.expand(steps, -1)
        table = []
        with _never_stepped():
            for _ in range(steps):
                table.append(self.current())
                for scheduler in self.schedulers:
                    scheduler.step()
        return torch.tensor(table, dtype=torch.float64, device=self.device)

    def end_epoch(self, val_losses: list[float]) -> None:
        """Step the per-epoch schedules (after evaluation, as the solo loop does)."""
        if self.interval != "epoch":
            return
        with _never_stepped():
            for scheduler, val_loss in zip(self.schedulers, val_losses):
                if isinstance(scheduler, ReduceLROnPlateau):
                    scheduler.step(val_loss)
                else:
                    scheduler.step()

    def keep(self, index: list[int]) -> None:
        self.optimizers = [self.optimizers[i] for i in index]
        self.schedulers = [self.schedulers[i] for i in index]



@contextlib.contextmanager
def _never_stepped():
    """torch warns when a schedule steps before its optimizer ever has: here that is by design."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                category=UserWarning)
        yield
