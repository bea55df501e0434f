"""summary.json's record of a training run: its final and best epochs, speed and provenance."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import torch

import dlrun
from dlrun.records import EpochRow, Summary, best_row


def _git_commit() -> str | None:
    """The commit of the repository the run was launched from, if any ('+dirty' when modified)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def environment(device: torch.device) -> dict:
    """What reproducing this run needs to know besides its config."""
    on_cuda = device.type == "cuda"
    return {
        "dlrun": dlrun.__version__,
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device_name": torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine(),
        "command": " ".join(["dlrun", *sys.argv[1:]]),
    }


def summarize(rows: list[EpochRow], timed: list[EpochRow], run_dir: Path, params: int,
              device: torch.device, wall: float) -> Summary:
    """Final and best rows of all epochs; speed of the epochs this process ran (`timed`)."""
    steps = sum(r.steps for r in timed)
    step_time = sum(r.step_time_s for r in timed)
    return Summary(
        status="ok",
        run_dir=str(run_dir),
        final=rows[-1] if rows else None,
        best=best_row(rows),
        epochs=len(rows),
        steps=steps,
        params=params,
        device=str(device),
        wall_time_s=wall,
        train_time_s=step_time,
        steps_per_s=steps / step_time if step_time > 0 else 0.0,
        eval_share=1 - step_time / max(sum(r.epoch_time_s for r in timed), 1e-12),
        environment=environment(device),
    )
