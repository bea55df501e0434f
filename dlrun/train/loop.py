"""The training loop: one flat pass per epoch, read by the host once per epoch.

`fit` is a generator: it yields each epoch's metrics row, and writes that
epoch's checkpoint only after the caller has logged the row, so a crash never
leaves a checkpoint ahead of the metrics. Inside an epoch nothing waits on the
device: losses and gradient norms accumulate as device tensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from dlrun.data import Dataset
from dlrun.data.batches import shuffled_batches, steps_per_epoch
from dlrun.train.accel import (
    autocast,
    compile_for_training,
    drops_last,
    eval_batch_size,
    grad_scaler,
)
from dlrun.train.checkpoint import restore_rng, rng_state, save_atomic
from dlrun.train.early_stopping import EarlyStopping
from dlrun.train.evaluate import evaluate
from dlrun.train.task import loss_fn

if TYPE_CHECKING:
    from dlrun.train.distributed import World

SPLITS = ("train", "val", "test")
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit(
    model: nn.Module,
    data: Dataset,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    trainer,
    sched_interval: str = "epoch",
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    checkpoint_dir: Path | None = None,
    resume: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple] | None = None,
    early_stopping: EarlyStopping | None = None,
    world: World | None = None,
    grad_norms: bool = True,
) -> Iterator[dict]:
    """Train for `trainer.epochs` epochs, yielding one row of metrics per epoch.

    `should_stop` is polled between steps (a signal handler's flag): when it turns
    true the epoch is abandoned and the loop ends; last.pt still holds the last
    completed epoch. A row whose losses are not finite is yielded with
    `"non_finite": True` and ends the loop without checkpointing those weights.
    `augment` transforms training batches only; `early_stopping` may end the loop
    early and restores its best weights when the loop ends. With a `world` of several
    processes (see `distributed`) this rank trains on its rows of every global batch
    through DDP, metrics are reduced over ranks, and a signal stops at an epoch's end.
    `grad_norms=False` (diagnosis off) leaves `grad_norm` out of the rows unless clipping
    computes it anyway.
    """
    device = data.x_train.device
    criterion = loss if loss is not None else loss_fn(data.task)  # the `loss` group's choice
    params = [p for p in model.parameters() if p.requires_grad]
    net = model if world is None else world.wrap(model)  # DDP: gradients averaged over ranks
    net = compile_for_training(net, trainer, device)  # evaluation below uses `model`, eager
    evaluate_split = evaluate if world is None else world.evaluate
    generator = torch.Generator(device=device).manual_seed(trainer.seed)
    start_epoch, best_val, best_epoch = 0, math.inf, 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        restore_rng(resume["rng"], generator)
        start_epoch, best_val, best_epoch = resume["epoch"], resume["best_val_loss"], resume["best_epoch"]
        if early_stopping is not None and "early_stopping" in resume:
            early_stopping.load_state_dict(resume["early_stopping"])

    def save(epoch: int, improved: bool) -> None:
        if checkpoint_dir is None:
            return
        state = {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(generator),
            "best_val_loss": best_val,
            "best_epoch": best_epoch,
        }
        if early_stopping is not None:
            state["early_stopping"] = early_stopping.state_dict()
        save_atomic(state, checkpoint_dir / "last.pt")
        if improved:
            best = {"epoch": epoch, "model": state["model"], "val_loss": best_val}
            save_atomic(best, checkpoint_dir / "best.pt")

    if resume is None:
        save(0, improved=False)  # even a run stopped in its first epoch can be resumed

    # read the knobs once: attribute access on a config costs more than a small step
    amp, scaler = autocast(device, trainer.precision), grad_scaler(device, trainer.precision)
    clip, clip_by_value = trainer.grad_clip, trainer.grad_clip_mode == "value"
    drop_last, batch_size = drops_last(trainer), trainer.batch_size
    eval_chunk = eval_batch_size(trainer, device, model, data.x_train)
    per_epoch = steps_per_epoch(len(data.x_train), batch_size, drop_last)
    sampled = min(NORM_EVERY, NORM_EPOCHS * per_epoch) if grad_norms else 0  # 0: never
    norm_every = 1 if clip is not None else sampled
    run_step = start_epoch * per_epoch  # optimizer steps of the run so far, a resumed run's too

    for epoch in range(start_epoch + 1, trainer.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        norm_sum = torch.zeros((), device=device)
        norms = 0
        steps = 0
        for xb, yb in shuffled_batches(data.x_train, data.y_train, batch_size, generator, drop_last):
            if augment is not None:  # training batches only
                xb, yb = augment(xb, yb, generator)
            if world is not None:  # this rank's rows; its loss is its share of the global mean
                xb, yb, weight = world.shard(xb, yb)
            # forward (autocast when trainer.precision asks) / backward
            with amp():
                if world is None:
                    loss = criterion(net(xb), yb)
                else:
                    loss = criterion.per_example(net(xb), yb).sum() * weight
                objective = loss + penalty(model) if penalty is not None else loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(objective).backward()
            scaler.unscale_(optimizer)
            # global gradient norm (a device tensor): every step when clipping, else sampled
            if norm_every and run_step % norm_every == 0:
                norm = global_norm([p.grad for p in params if p.grad is not None])
                norm_sum += norm
                norms += 1
            if clip is not None and clip_by_value:
                torch.nn.utils.clip_grad_value_(params, clip)
            elif clip is not None:
                torch.nn.utils.clip_grads_with_norm_(params, clip, norm)
            scaler.step(optimizer)
            scaler.update()
            if sched_interval == "step":
                scheduler.step()
            loss_sum += loss.detach()
            steps += 1
            run_step += 1
            if world is None and should_stop():
                return
        if world is not None:  # ranks stop together, at the end of an epoch
            if world.any(should_stop()):
                return
            loss_sum = world.mean(loss_sum)
        _sync(device)
        train_seconds = time.perf_counter() - started

        # evaluate every split; the one host sync of the epoch is the .tolist() below
        metrics = {split: evaluate_split(model, *data.split(split), data.task,
                                         eval_chunk, criterion)
                   for split in SPLITS}
        names = [(split, key) for split in SPLITS for key in metrics[split]]
        values = torch.stack(
            [metrics[s][k].float() for s, k in names] + [loss_sum / steps]
            + ([norm_sum / norms] if norms else [])
        ).tolist()
        row = {"epoch": epoch}
        row.update({f"{s}_{k}": v for (s, k), v in zip(names, values)})
        row.update(lr=lr, batch_loss=values[len(names)])
        if norms:
            row["grad_norm"] = values[-1]
        row.update(steps=steps, step_time_s=train_seconds,
                   epoch_time_s=time.perf_counter() - started)

        # schedule, bookkeeping, then hand the row to the caller before checkpointing
        if sched_interval == "epoch":
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row["val_loss"])
            else:
                scheduler.step()
        if not all(math.isfinite(v) for v in values):
            yield {**row, "best_epoch": best_epoch, "non_finite": True}
            return  # last.pt and best.pt keep the last finite weights
        improved = row["val_loss"] < best_val
        if improved:
            best_val, best_epoch = row["val_loss"], epoch
        row["best_epoch"] = best_epoch
        stop = early_stopping is not None and early_stopping.update(epoch, row["val_loss"], model)
        yield row
        save(epoch, improved)
        if stop:
            break
    if early_stopping is not None:
        early_stopping.restore(model)
