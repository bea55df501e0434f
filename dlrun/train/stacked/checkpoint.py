"""A stacked job's checkpoints: the solo run's files, built from the job's slice of the stack.

last.pt and best.pt hold exactly the keys `dlrun.train.loop.fit` saves (model, optimizer,
scheduler, rng, best_val_loss, best_epoch, early_stopping), in torch's own formats,
through the job's own model and torch optimizer, so `trainer.resume=<job dir>` and
`mode=eval` read a stacked job as a plain run. The stack keeps, on the device, a copy of
the state at the end of the last epoch (`Snapshot`: a job whose loss turns non-finite
gets the last finite one, as a solo run's last.pt does) and each job's weights at its
best epoch; files are written when a job leaves the stack, when the stack ends or is
stopped, and every `every` epochs if asked: writing K jobs' checkpoints every epoch would
cost more than the stack saves on a small model (about 10 ms a file here, fsync included).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from dlrun.train.checkpoint import save_atomic
from dlrun.train.stacked.model import StackedNet
from dlrun.train.stacked.optimizers import StackedOptimizer


@dataclass
class Snapshot:
    """Everything a job's last.pt holds, for every job of the stack, at the end of an epoch."""

    epoch: int
    weights: list[torch.Tensor]  # StackedNet.state(), cloned
    optimizer: StackedOptimizer  # a copy with cloned state
    lrs: list[float]
    schedulers: list[dict]
    generators: list[torch.Tensor]
    torch_rng: torch.Tensor
    best_val: list[float]
    best_epoch: list[int]


def take_snapshot(net: StackedNet, optimizer: StackedOptimizer, schedules, generators,
                  epoch: int, best_val: list[float], best_epoch: list[int]) -> Snapshot:
    copied = copy.copy(optimizer)
    copied.state = {key: [t.clone() for t in tensors] for key, tensors in optimizer.state.items()}
    if hasattr(optimizer, "mu_product"):  # NAdam's running product
        copied.mu_product = optimizer.mu_product.clone()
    return Snapshot(epoch, [t.detach().clone() for t in net.state()], copied, schedules.current(),
                    [s.state_dict() for s in schedules.schedulers],
                    [g.get_state() for g in generators], torch.get_rng_state(),
                    list(best_val), list(best_epoch))


class BestWeights:
    """Each job's weights at its lowest validation loss so far, kept on the device."""

    def __init__(self, net: StackedNet):
        self.weights = [t.detach().clone() for t in net.state()]

    @torch.no_grad()
    def update(self, net: StackedNet, improved: list[int]) -> None:
        if not improved:
            return
        where = torch.tensor(improved, device=self.weights[0].device)
        for best, now in zip(self.weights, net.state()):
            best.index_copy_(0, where, now.detach().index_select(0, where))

    def keep(self, index: torch.Tensor) -> None:
        self.weights = [t[index] for t in self.weights]


def save_job(directory: Path, k: int, job, net: StackedNet, snapshot: Snapshot, best: BestWeights) -> None:
    """Write job `k`'s (its place in the stack) last.pt from `snapshot` and its best.pt."""
    model, optimizer = job.parts.model, job.parts.optimizer
    net.unstack_into(k, model, snapshot.weights)
    params = list(model.parameters())
    groups = optimizer.state_dict()["param_groups"]
    groups[0]["lr"] = snapshot.lrs[k]
    state = {
        "epoch": snapshot.epoch,
        "model": model.state_dict(),
        "optimizer": {"state": _optimizer_state(snapshot.optimizer, k, optimizer, len(params)),
                      "param_groups": groups},
        "scheduler": snapshot.schedulers[k],
        "rng": {"torch": snapshot.torch_rng, "batches": snapshot.generators[k]},
        "best_val_loss": snapshot.best_val[k],
        "best_epoch": snapshot.best_epoch[k],
    }
    if job.parts.stopper is not None:
        state["early_stopping"] = job.parts.stopper.state_dict()
    save_atomic(state, directory / "last.pt")
    if snapshot.best_epoch[k] > 0:
        net.unstack_into(k, model, best.weights)
        save_atomic({"epoch": snapshot.best_epoch[k], "model": model.state_dict(),
                     "val_loss": snapshot.best_val[k]}, directory / "best.pt")


def _optimizer_state(stacked: StackedOptimizer, k: int, own: torch.optim.Optimizer, params: int) -> dict:
    """Job `k`'s optimizer state by parameter index; before its first step, what its own torch
    optimizer holds then (nothing, or Adagrad's initial sums)."""
    if stacked.steps == 0:
        return own.state_dict()["state"]
    state = stacked.job_state(k)
    assert len(state) == params
    return dict(enumerate(state))
