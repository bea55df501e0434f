"""The training loop: one flat pass per epoch, read by the host once per epoch.

`fit` is a generator: it yields each epoch's `EpochRow`, and writes that epoch's checkpoint
only after the caller has logged the row, so a crash never leaves a checkpoint ahead of
the metrics. Inside an epoch nothing waits on the device: losses and gradient norms
accumulate as device tensors. The same loop trains one process and one rank of several:
the `world` (see `distributed`) decides which rows this process trains on and how its
sums meet the other ranks'.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from dlrun.data.batches import shuffled_batches, steps_per_epoch
from dlrun.records import SPLITS, EpochRow
from dlrun.train.accel import (
    autocast,
    compile_for_training,
    drops_last,
    eval_batch_size,
    grad_scaler,
)
from dlrun.train.bookkeeping import Bookkeeping, GradNorms
from dlrun.train.components import Components
from dlrun.train.distributed import World
from dlrun.train.task import loss_fn

ONE_PROCESS = World()


def fit(
    run: Components,
    trainer,
    *,
    world: World = ONE_PROCESS,
    checkpoint_dir: Path | None = None,
    resume: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    grad_norms: bool = True,
) -> Iterator[EpochRow]:
    """Train `run` for `trainer.epochs` epochs, yielding one row of metrics per epoch.

    `should_stop` is polled between steps (a signal handler's flag): when it turns true
    the loop ends (between steps alone, at the epoch's end when ranks must agree);
    last.pt still holds the last completed epoch. A row whose values are not finite is
    yielded with `non_finite` set and ends the loop without checkpointing those weights.
    `run.stopper` (early stopping) may end the loop early and restores its best weights
    when the loop ends. `grad_norms=False` (diagnosis off) leaves `grad_norm` out of the
    rows unless clipping computes it anyway. `resume` is a last.pt checkpoint to continue.
    """
    model, data, optimizer, scheduler = run.model, run.data, run.optimizer, run.scheduler
    device = data.x_train.device
    criterion = run.loss if run.loss is not None else loss_fn(data.task)
    params = [p for p in model.parameters() if p.requires_grad]
    net = compile_for_training(world.wrap(model), trainer, device)  # evaluation uses `model`, eager
    generator = torch.Generator(device=device).manual_seed(trainer.seed)
    book = Bookkeeping(run, generator, checkpoint_dir, resume)  # restores a resumed run

    # read the knobs once: attribute access on a config costs more than a small step
    amp, scaler = autocast(device, trainer.precision), grad_scaler(device, trainer.precision)
    clip, clip_by_value = trainer.grad_clip, trainer.grad_clip_mode == "value"
    drop_last, batch_size = drops_last(trainer), trainer.batch_size
    eval_chunk = eval_batch_size(trainer, device, model, data.x_train)
    per_epoch = steps_per_epoch(len(data.x_train), batch_size, drop_last)
    norms = GradNorms(params, per_epoch, clipping=clip is not None, wanted=grad_norms)
    run_step = book.start_epoch * per_epoch  # optimizer steps of the run so far, a resumed run's too

    for epoch in range(book.start_epoch + 1, trainer.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]  # the epoch's learning rate: the schedule set it
        started = time.perf_counter()
        model.train()
        loss_sum, steps = torch.zeros((), device=device), 0
        norms.new_epoch(device)
        for xb, yb in shuffled_batches(data.x_train, data.y_train, batch_size, generator, drop_last):
            if run.augment is not None:  # training batches only
                xb, yb = run.augment(xb, yb, generator)
            # forward (autocast when trainer.precision asks) on this process's rows of the
            # global batch; their loss is their share of the batch's mean loss
            rows = len(xb)
            xb, yb = world.shard(xb, yb)
            with amp():
                loss = world.batch_loss(criterion, net(xb), yb, rows)
                objective = loss + run.penalty(model) if run.penalty is not None else loss
            # backward
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(objective).backward()
            scaler.unscale_(optimizer)
            # clip: the global gradient norm (a device tensor) every step when clipping, else sampled
            norm = norms.measure() if norms.due(run_step) else None
            if clip is not None:
                _clip(params, clip, clip_by_value, norm)
            # step, and the schedule when it moves per step
            scaler.step(optimizer)
            scaler.update()
            if run.interval == "step":
                scheduler.step()
            loss_sum += loss.detach()
            steps += 1
            run_step += 1
            if world.stops_now(should_stop()):
                return
        if world.any(should_stop()):  # ranks stop together, at the end of an epoch
            return
        _sync(device)
        train_seconds = time.perf_counter() - started

        # evaluate every split; the one host sync of the epoch is the .tolist() in _row
        metrics = {split: world.evaluate(model, *data.split(split), data.task, eval_chunk, criterion)
                   for split in SPLITS}
        row = _row(epoch, metrics, lr, world.mean(loss_sum) / steps, norms.mean(), steps)
        row.step_time_s, row.epoch_time_s = train_seconds, time.perf_counter() - started

        # the schedule when it moves per epoch (ReduceLROnPlateau on the val loss)
        if run.interval == "epoch":
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row.loss("val"))
            else:
                scheduler.step()

        # bookkeeping: the best epoch, early stopping, then the row goes to the caller before
        # its checkpoint; a non-finite epoch ends the run with last.pt and best.pt on the
        # last finite weights
        improved = book.record(row)
        if row.non_finite:
            yield row
            return
        stop = run.stopper is not None and run.stopper.update(epoch, row.loss("val"), model)
        yield row
        book.save(epoch, improved)
        if stop:
            break
    if run.stopper is not None:
        run.stopper.restore(model)


def _clip(params: list[torch.Tensor], limit: float, by_value: bool, norm: torch.Tensor) -> None:
    """trainer.grad_clip: each gradient entry into [-limit, limit], or the global norm to limit."""
    if by_value:
        torch.nn.utils.clip_grad_value_(params, limit)
    else:
        torch.nn.utils.clip_grads_with_norm_(params, limit, norm)


def _row(epoch: int, metrics: dict[str, dict[str, torch.Tensor]], lr: float,
         batch_loss: torch.Tensor, grad_norm: torch.Tensor | None, steps: int) -> EpochRow:
    """The epoch's row from its device tensors, read in one `.tolist()`; flagged non-finite
    when any value is NaN or infinite."""
    names = [(split, name) for split in metrics for name in metrics[split]]
    tensors = [metrics[split][name].float() for split, name in names] + [batch_loss]
    values = torch.stack(tensors + ([] if grad_norm is None else [grad_norm])).tolist()
    splits: dict[str, dict[str, float]] = {}
    for (split, name), value in zip(names, values):
        splits.setdefault(split, {})[name] = value
    return EpochRow(
        epoch=epoch, splits=splits, lr=lr, batch_loss=values[len(names)],
        grad_norm=None if grad_norm is None else values[-1], steps=steps,
        non_finite=not all(math.isfinite(v) for v in values),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
