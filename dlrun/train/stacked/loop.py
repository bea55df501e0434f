"""The stacked epoch loop: K jobs trained as one model, each yielding its own epoch rows.

The solo loop (dlrun.train.loop.fit) per job, in one pass: every step draws each job's
own batch, runs one forward and backward through the stacked model, and applies each
job's update; losses and sampled gradient norms accumulate per job on the device, and
after the evaluation of all jobs' splits the host reads everything once. A job whose
loss turns non-finite, or whose early stopping fires, leaves the stack (its updates
stop, its checkpoints are written) and the others go on. Nothing waits on the device
inside an epoch, as in the solo loop; the stop flag (Ctrl-C) is read at epoch ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from dlrun.build import Components
from dlrun.data.batches import steps_per_epoch
from dlrun.records import SPLITS, EpochRow
from dlrun.train.accel import autocast, compile_for_training, drops_last, eval_batch_size
from dlrun.train.bookkeeping import NORM_EPOCHS, NORM_EVERY
from dlrun.train.stacked.algorithms import stacked_optimizer
from dlrun.train.stacked.batches import JobData
from dlrun.train.stacked.checkpoint import BestWeights, save_job, take_snapshot
from dlrun.train.stacked.evaluate import evaluate_stack
from dlrun.train.stacked.model import StackedNet
from dlrun.train.stacked.schedules import JobSchedules


@dataclass
class StackJob:
    """One job as the stack trains it: its own run's parts (dlrun.build) and per-job knobs."""

    parts: Components
    seed: int
    dropout: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    clip: float | None = None
    grad_norms: bool = True  # diagnosis on: sample gradient norms
    checkpoint_dir: Path | None = None


def _column(values, device, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


class Stack:
    """The stacked model, optimizer, schedules and data of the jobs still training."""

    def __init__(self, jobs: list[StackJob], trainer):
        self.jobs, self.active = jobs, list(range(len(jobs)))
        parts = [job.parts for job in jobs]
        self.device = parts[0].data.x_train.device
        self.net = StackedNet([p.model for p in parts], [job.dropout for job in jobs])
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = stacked_optimizer(self.params, [p.optimizer for p in parts])
        self.schedules = JobSchedules([p.optimizer for p in parts], [p.scheduler for p in parts],
                                      parts[0].interval, self.device)
        self.data = JobData([p.data for p in parts], [job.seed for job in jobs],
                            trainer.batch_size, drops_last(trainer))
        self.loss, self.task = parts[0].loss, parts[0].data.task
        self.l1 = _column([job.l1 for job in jobs], self.device)
        self.l2 = _column([job.l2 for job in jobs], self.device)
        self.has_l1, self.has_l2 = any(job.l1 for job in jobs), any(job.l2 for job in jobs)
        self.clip = _column([math.inf if job.clip is None else job.clip for job in jobs], self.device)
        self.best = BestWeights(self.net)
        self.best_val, self.best_epoch = [math.inf] * len(jobs), [0] * len(jobs)

    def leave(self, positions: list[int]) -> None:
        """The jobs at these places in the stack stop training; the others keep their places in order."""
        keep = [i for i in range(len(self.active)) if i not in positions]
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.net.keep(keep)
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer.keep(index, self.params)
        self.schedules.keep(keep)
        self.data.keep(keep)
        self.best.keep(index)
        self.l1, self.l2, self.clip = self.l1[index], self.l2[index], self.clip[index]
        self.active = [self.active[i] for i in keep]
        self.best_val = [self.best_val[i] for i in keep]
        self.best_epoch = [self.best_epoch[i] for i in keep]

    def penalty(self) -> torch.Tensor | None:
        """Each job's l1 * sum|w| + l2 * sum w^2 over its weight matrices and kernels (as
        dlrun.train.regularize: not biases), as [K]; None when no job has a penalty."""
        l1, l2 = self.has_l1, self.has_l2  # of the jobs at the start: no host read per step
        if not (l1 or l2):
            return None
        total = self.l1.new_zeros(len(self.active))
        for w in self.params:
            if w.ndim >= 3:  # a job's weight matrix or kernel, with the job dimension in front
                dims = tuple(range(1, w.ndim))
                if l1:
                    total = total + self.l1 * w.abs().sum(dims)
                if l2:
                    total = total + self.l2 * w.square().sum(dims)
        return total

    def grad_norms(self) -> torch.Tensor:
        """Each job's global gradient norm, [K] (dlrun.train.loop.global_norm per job)."""
        norms = [torch.linalg.vector_norm(p.grad, dim=tuple(range(1, p.ndim)))
                 for p in self.params if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack(norms), dim=0)

    def clip_gradients(self, norm: torch.Tensor | None, by_value: bool) -> None:
        """trainer.grad_clip per job (inf: no clipping), as torch.nn.utils clips one model."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if by_value:
            for g in grads:
                bound = self.clip.view(-1, *[1] * (g.ndim - 1))
                g.clamp_(min=-bound, max=bound)
            return
        coef = torch.clamp(self.clip / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.ndim - 1)))


def fit_stack(stack: Stack, *, trainer, should_stop: Callable[[], bool] = lambda: False,
              checkpoint_every: int | None = None) -> Iterator[dict[int, EpochRow]]:
    """Train every job for `trainer.epochs` epochs; yield each epoch's rows by job (its index in
    `stack.jobs`). When the loop ends, each job's model holds its final weights (its best
    ones when its early stopping restores them) and its checkpoints are written."""
    device, jobs = stack.device, stack.jobs
    net = compile_for_training(stack.net, trainer, device)  # evaluation runs on stack.net, eager
    amp = autocast(device, trainer.precision)
    clip_on = any(job.clip is not None for job in jobs)
    per_epoch = steps_per_epoch(stack.data.train_rows, trainer.batch_size, drops_last(trainer))
    sampled = min(NORM_EVERY, NORM_EPOCHS * per_epoch)  # as the solo loop samples gradient norms
    every = [1 if job.clip is not None else (sampled if job.grad_norms else 0) for job in jobs]
    any_sampled = any(every)
    chunk = eval_batch_size(trainer, device, jobs[0].parts.model, jobs[0].parts.data.x_train)
    snapshot = _snapshot(stack, 0)  # a job that fails in epoch 1 keeps its initial state, as solo
    run_step = 0
    for epoch in range(1, trainer.epochs + 1):
        active = list(stack.active)
        lrs = stack.schedules.current()
        always = _column([float(every[j] == 1) for j in active], device)
        on_sample = _column([float(every[j] != 0) for j in active], device)
        started = time.perf_counter()
        table = stack.schedules.epoch_table(per_epoch)
        net.train()
        loss_sum = torch.zeros(len(active), device=device)
        norm_sum = torch.zeros(len(active), device=device)
        steps = sample_steps = 0
        for xb, yb in stack.data.batches():
            # forward (autocast when trainer.precision asks) / backward, all jobs at once
            with amp():
                losses = stack.loss.per_example(net(xb), yb).view(len(active), -1).mean(dim=1)
                penalty = stack.penalty()
                objective = (losses if penalty is None else losses + penalty).sum()
            stack.optimizer.zero_grad()
            objective.backward()
            # each job's gradient norm: every step for jobs that clip, else sampled
            sample_step = run_step % sampled == 0
            norm = None
            if clip_on or (sample_step and any_sampled):
                norm = stack.grad_norms()
                norm_sum += norm * (on_sample if sample_step else always)
                sample_steps += sample_step
            if clip_on:
                stack.clip_gradients(norm, trainer.grad_clip_mode == "value")
            stack.optimizer.step(table[steps])
            loss_sum += losses.detach().float()
            steps += 1
            run_step += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step_seconds = time.perf_counter() - started

        # every job's every split in one batched pass; the epoch's one host read is .tolist()
        metrics = {s: evaluate_stack(stack.net, stack.data, s, stack.task, chunk, stack.loss)
                   for s in SPLITS}
        names = [(s, key) for s in SPLITS for key in metrics[s]]
        counts = [steps if every[j] == 1 else sample_steps if every[j] else 0 for j in active]
        values = torch.stack([metrics[s][key].float() for s, key in names]
                             + [loss_sum / steps, norm_sum / _column([max(c, 1) for c in counts], device)]
                             ).tolist()
        epoch_seconds = time.perf_counter() - started
        rows, nonfinite = {}, []
        for i, j in enumerate(active):
            column = [v[i] for v in values]
            row = EpochRow(epoch=epoch, lr=lrs[i], batch_loss=column[len(names)], steps=steps,
                           step_time_s=step_seconds, epoch_time_s=epoch_seconds)
            for (s, key), value in zip(names, column):
                row.splits.setdefault(s, {})[key] = value
            if counts[i]:
                row.grad_norm = column[-1]
            row.non_finite = not all(math.isfinite(v) for v in column[: len(names) + 1 + bool(counts[i])])
            if not row.non_finite and row.loss("val") < stack.best_val[i]:
                stack.best_val[i], stack.best_epoch[i] = row.loss("val"), epoch
            row.best_epoch = stack.best_epoch[i]
            rows[j] = row
            if row.non_finite:
                nonfinite.append(i)
        stack.schedules.end_epoch([rows[j].loss("val") for j in active])
        yield rows

        # after the caller logged the rows (checkpoints never run ahead of the metrics)
        stack.best.update(stack.net, [i for i in range(len(active)) if i not in nonfinite
                                      and stack.best_epoch[i] == epoch])
        stopping = [j for i, j in enumerate(active) if i not in nonfinite and _stops(stack, i, j, epoch, rows[j])]
        _leave(stack, snapshot, nonfinite, restore=False)  # their last finite state
        snapshot = _snapshot(stack, epoch)
        if epoch == trainer.epochs or should_stop():
            _leave(stack, snapshot, list(range(len(stack.active))), restore=True)
            return
        due = bool(checkpoint_every) and epoch % checkpoint_every == 0
        if due:
            _save(stack, snapshot, range(len(stack.active)))
        _leave(stack, snapshot, [stack.active.index(j) for j in stopping], restore=True, saved=due)
        if not stack.active:
            return


def _stops(stack: Stack, i: int, j: int, epoch: int, row: EpochRow) -> bool:
    """The job's early stopping (reg=early_stopping) sees its epoch; True: it stops now."""
    job = stack.jobs[j]
    if job.parts.stopper is None:
        return False
    stack.net.unstack_into(i, job.parts.model)  # the stopper keeps a copy of the best weights
    return job.parts.stopper.update(epoch, row.loss("val"), job.parts.model)


def _snapshot(stack: Stack, epoch: int):
    return take_snapshot(stack.net, stack.optimizer, stack.schedules, stack.data.generators,
                         epoch, stack.best_val, stack.best_epoch)


def _save(stack: Stack, snapshot, positions) -> None:
    for i in positions:
        job = stack.jobs[stack.active[i]]
        if job.checkpoint_dir is not None:
            save_job(job.checkpoint_dir, i, job, stack.net, snapshot, stack.best)


def _leave(stack: Stack, snapshot, positions: list[int], *, restore: bool, saved: bool = False) -> None:
    """Jobs leave the stack: their checkpoints from `snapshot`, their models with its weights
    (the best ones when their early stopping restores them)."""
    if not positions:
        return
    if not saved:
        _save(stack, snapshot, positions)
    for i in positions:
        job = stack.jobs[stack.active[i]]
        stack.net.unstack_into(i, job.parts.model, snapshot.weights)
        if restore and job.parts.stopper is not None:
            job.parts.stopper.restore(job.parts.model)
    stack.leave(positions)
