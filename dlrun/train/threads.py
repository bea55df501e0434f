"""How many CPU threads torch uses: by the work of one training step, within this process's
share of the cores.

Measured on this project's 2-core machine (README, Performance): a step of a few MFLOP
(the default MLP on the digits: 3.3 MFLOP of forward work per batch of 64; the MNIST-1D MLP
at batch 100: 3.0) runs as fast on one thread as on two, while the MNIST-1D CNN (14 MFLOP)
ran 1.19x faster on two. A second thread costs every model dearly when another process
keeps a core busy: 0.04-0.13x of one thread's speed for steps of 3-137 MFLOP here (the
default run: 16 steps/s on 2 threads beside one busy process, 704 on 1). So
`trainer.threads=null` gives 1 thread below THREADED_STEP_FLOPS of forward work per step,
where a second thread has not been seen to pay, and otherwise the cores this process may use
divided among the processes that run at once (joblib's n_jobs, local DDP ranks).
`trainer.threads=N` overrides it.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlrun.train.one_row import forward_one_row

# forward FLOPs of one training step (a batch's rows) from which threads follow the cores:
# between the MLPs that gain nothing from a second thread (3-3.3 MFLOP) and the 1-D CNN that
# gained 1.19x (14 MFLOP)
THREADED_STEP_FLOPS = 10e6


def cores_available() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def core_share(cores: int, parallel: int = 1) -> int:
    """This process's share of `cores` among `parallel` processes that run at once (at least 1)."""
    return max(1, cores // max(1, parallel))


def default_threads(step_flops: float, cores: int, parallel: int = 1) -> int:
    """1 thread for a step under THREADED_STEP_FLOPS; else this process's share of the cores."""
    return 1 if step_flops < THREADED_STEP_FLOPS else core_share(cores, parallel)


def step_flops(model: nn.Module, example: torch.Tensor, batch_rows: int) -> float:
    """Forward FLOPs of a training step of `batch_rows` rows, from one row of `example` through
    `model` (torch's FlopCounterMode; recurrent layers, which it does not count on a CPU, as 2
    FLOPs per weight per time step)."""
    recurrent = 0

    def count_rnn(module: nn.RNNBase, inputs, output) -> None:
        nonlocal recurrent
        steps = inputs[0].shape[1 if module.batch_first else 0] if inputs[0].dim() == 3 else 1
        recurrent += 2 * steps * sum(p.numel() for p in module.parameters())

    counter = FlopCounterMode(display=False)
    forward_one_row(model, example, [(m, count_rnn) for m in model.modules()
                                     if isinstance(m, nn.RNNBase)], within=counter)
    return float(counter.get_total_flops() + recurrent) * batch_rows


def run_step_flops(trainer, model: nn.Module, data) -> float:
    """Forward FLOPs of one of this run's training steps (a batch of trainer.batch_size rows)."""
    rows = min(trainer.batch_size or len(data.x_train), len(data.x_train))
    return step_flops(model, data.x_train, rows)


def rule_threads(trainer, model: nn.Module, data, parallel: int = 1) -> int:
    """trainer.threads, or the rule's count for `model` training on `data` at trainer.batch_size."""
    if trainer.threads is not None:
        return trainer.threads
    return default_threads(run_step_flops(trainer, model, data), cores_available(), parallel)


def use_threads(trainer, model: nn.Module, data, parallel: int = 1) -> int:
    """Set torch's CPU threads for this run (`rule_threads`); returns them."""
    threads = rule_threads(trainer, model, data, parallel)
    torch.set_num_threads(threads)
    return threads
