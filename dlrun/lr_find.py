"""`dlrun mode=lr_find`: the learning-rate range test as a job of its own.

Runs `dlrun.train.lr_range.lr_range_test` with the configured model, data, loss and
optimizer, then writes lr_find.json, logs the curve to TensorBoard (scalars per step and a
loss-vs-LR figure), and prints the suggested LR with the command that uses it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from dlrun.errors import UserError
from dlrun.overrides import command, merge, run_flags
from dlrun.report.files import write_json
from dlrun.train.lr_range import RangeTest, lr_range_test
from dlrun.train.lr_suggest import RULE

DROPPED = ("mode", "lr_find", "trainer.resume")


def command_with_lr(overrides: list[str], lr: float) -> str:
    """`dlrun <the user's overrides> optim.lr=<lr>`, without mode=lr_find or lr_find.* knobs."""
    return command(merge(overrides, [f"optim.lr={lr:.3g}"], drop=DROPPED), run_flags())


def log_curve(run_dir: Path, result: RangeTest) -> None:
    """Scalars against the step (LR grows exponentially with it) and, as a figure, loss against LR."""
    writer = SummaryWriter(str(run_dir / "tb"))
    try:
        for step, (lr, loss) in enumerate(zip(result.lrs, result.losses)):
            writer.add_scalar("lr_find/lr", lr, step)
            if math.isfinite(loss):
                writer.add_scalar("lr_find/loss", loss, step)
        for step, smooth in enumerate(result.smoothed):
            writer.add_scalar("lr_find/smoothed_loss", smooth, step)
        figure = _figure(result)
        if figure is not None:
            writer.add_figure("lr_find/loss_vs_lr", figure, 0)
    finally:
        writer.close()


def _figure(result: RangeTest):
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:  # the scalars above still hold the curve
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    finite = len(result.smoothed)
    axes.plot(result.lrs[:finite], result.losses[:finite], alpha=0.3, label="batch loss")
    axes.plot(result.lrs[:finite], result.smoothed, label="smoothed")
    if result.steepest_index is not None:
        steepest = result.lrs[result.steepest_index]
        axes.axvline(steepest, color="gray", linestyle=":", label=f"steepest fall {steepest:.2g}")
    if result.suggestion is not None:
        axes.axvline(
            result.suggestion,
            color="red",
            linestyle="--",
            label=f"suggested {result.suggestion:.2g}",
        )
    axes.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    axes.legend()
    return figure


def find_lr(
    cfg: DictConfig, run_dir: Path, data, model, optimizer, loss, overrides: list[str]
) -> float:
    """Run the range test, record and print it; returns the lowest smoothed loss."""
    knobs = cfg.lr_find
    if knobs.end_lr <= knobs.start_lr:
        raise UserError(
            f"lr_find.end_lr={knobs.end_lr} must be larger than lr_find.start_lr={knobs.start_lr}; "
            "e.g. lr_find.start_lr=1e-6 lr_find.end_lr=1."
        )
    generator = torch.Generator(device=data.x_train.device).manual_seed(cfg.trainer.seed)
    result = lr_range_test(
        model,
        optimizer,
        data.x_train,
        data.y_train,
        loss,
        batch_size=cfg.trainer.batch_size,
        generator=generator,
        start_lr=knobs.start_lr,
        end_lr=knobs.end_lr,
        steps=knobs.steps,
        smoothing=knobs.smoothing,
        diverge=knobs.diverge,
    )
    command = command_with_lr(overrides, result.suggestion) if result.suggestion else None
    write_json(
        run_dir / "lr_find.json",
        {
            "rule": RULE,
            "suggestion": result.suggestion,
            "min_loss_lr": result.min_loss_lr if result.lrs else None,
            "min_loss_lr_over_10": result.min_loss_lr / 10 if result.lrs else None,
            "steepest_lr": result.lrs[result.steepest_index]
            if result.steepest_index is not None
            else None,
            "fall": result.fall,
            "noise_floor": result.noise_floor if math.isfinite(result.noise_floor) else None,
            "diverged_at_lr": result.lrs[result.diverged_at]
            if result.diverged_at is not None
            else None,
            "command": command,
            "steps": len(result.lrs),
            "lrs": result.lrs,
            "losses": result.losses,
            "smoothed": result.smoothed,
        },
    )
    log_curve(run_dir, result)
    _print(result, command, run_dir)
    return min(result.smoothed) if result.smoothed else math.nan


def _print(result: RangeTest, command: str | None, run_dir: Path) -> None:
    stop = (
        f"diverged at lr {result.lrs[result.diverged_at]:.3g}"
        if result.diverged_at is not None
        else "reached lr_find.end_lr without diverging"
    )
    print(
        f"LR range test: {len(result.lrs)} steps, {stop}; "
        f"lowest smoothed loss {min(result.smoothed, default=math.nan):.4g} at lr {result.min_loss_lr:.3g}"
    )
    if result.suggestion is None:
        why = (
            f"before its minimum the smoothed loss fell by {result.fall:.3g}, no more than its "
            f"noise alone would (noise floor {result.noise_floor:.3g})"
            if math.isfinite(result.noise_floor)
            else "the smoothed loss is lowest at the start of the range"
        )
        print(
            f"No suggestion: {why}. "
            "Widen the range (e.g. lr_find.start_lr=1e-8 lr_find.end_lr=100), take more steps "
            "or larger batches (lr_find.steps, trainer.batch_size), or check the data and model."
        )
    else:
        steepest = result.lrs[result.steepest_index]
        print(
            f"Steepest real fall at lr {steepest:.3g} (the smoothed loss fell by {result.fall:.3g}, "
            f"beyond its noise floor {result.noise_floor:.3g})"
        )
        print(f"Suggested learning rate: {result.suggestion:.3g} ({RULE})")
        print(f"Use it: {command}")
    print(f"Curve: {run_dir / 'lr_find.json'}; tensorboard --logdir {run_dir}")
    sys.stdout.flush()
