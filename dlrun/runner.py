"""One job, from composed config to a finished run directory.

Build the data, model, optimizer and schedule from their `_target_`s, train,
log every epoch (metrics.jsonl, TensorBoard, terminal), then write summary.json
and print the result table.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import dlrun
from dlrun.config import validate
from dlrun.errors import UserError
from dlrun.report.files import MetricsLog, write_json
from dlrun.report.tensorboard import TensorBoardLog
from dlrun.report.terminal import EpochDisplay, print_result
from dlrun.train import fit
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.device import resolve_device
from dlrun.train.regularize import weight_penalty


def build(cfg: DictConfig, device: torch.device):
    """Data, model, optimizer and scheduler, wired by the configs' `_target_` lines."""
    torch.manual_seed(cfg.trainer.seed)
    data = instantiate(cfg.data, seed=cfg.trainer.seed).to(device)
    model = instantiate(cfg.model, input_shape=data.input_shape, out_features=data.out_features)
    model = model.to(device)
    optimizer = instantiate(cfg.optim)(model.parameters())
    sched = OmegaConf.to_container(cfg.sched, resolve=True)
    interval = sched.pop("interval", "epoch")
    scheduler = instantiate(sched)(optimizer)
    return data, model, optimizer, scheduler, interval


def environment(device: torch.device) -> dict:
    return {
        "dlrun": dlrun.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "command": " ".join(["dlrun", *sys.argv[1:]]),
    }


def summarize(rows: list[dict], run_dir: Path, params: int, device: torch.device, wall: float) -> dict:
    final = rows[-1] if rows else {}
    best = min(rows, key=lambda r: r["val_loss"]) if rows else {}
    steps = sum(r["steps"] for r in rows)
    step_time = sum(r["step_time_s"] for r in rows)
    return {
        "run_dir": str(run_dir),
        "final": final,
        "best": best,
        "epochs": len(rows),
        "steps": steps,
        "params": params,
        "device": str(device),
        "wall_time_s": wall,
        "train_time_s": step_time,
        "steps_per_s": steps / step_time if step_time > 0 else 0.0,
        "eval_share": 1 - step_time / max(sum(r["epoch_time_s"] for r in rows), 1e-12),
        "environment": environment(device),
    }


def run_job(cfg: DictConfig, run_dir: Path | None = None) -> float:
    """Train one configured run into `run_dir` (Hydra's output directory by default).

    Returns the final validation loss, which is what sweepers minimize.
    """
    started = time.perf_counter()
    validate(cfg)
    run_dir = Path(run_dir or HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.trainer.device)
    data, model, optimizer, scheduler, interval = build(cfg, device)
    penalty = weight_penalty(l2=OmegaConf.select(cfg, "reg.l2.strength", default=0.0))
    params = sum(p.numel() for p in model.parameters())

    resume = None
    if cfg.trainer.resume is not None:
        resume = load_checkpoint(run_dir / "checkpoints" / "last.pt", device)
        try:
            model.load_state_dict(resume["model"])
        except RuntimeError:
            raise UserError(
                f"trainer.resume={cfg.trainer.resume}: its checkpoint holds a different model than "
                "this command builds; resume without changing model.* overrides, or start a fresh run."
            ) from None
    start = resume["epoch"] if resume else 0

    metrics = MetricsLog(run_dir / "metrics.jsonl", keep_through_epoch=start)
    board = TensorBoardLog(run_dir, purge_step=start + 1 if resume else None)
    display = EpochDisplay(cfg.trainer.epochs, cfg.trainer.progress, start)
    checkpoints = run_dir / "checkpoints" if cfg.trainer.checkpoint else None
    try:
        for row in fit(model, data, optimizer, scheduler, trainer=cfg.trainer,
                       sched_interval=interval, penalty=penalty,
                       checkpoint_dir=checkpoints, resume=resume):
            metrics.append(row)
            board.epoch(row)
            display.update(row)
    finally:
        display.close()
        metrics.close()
        board.close()

    summary = summarize(metrics.rows, run_dir, params, device, time.perf_counter() - started)
    write_json(run_dir / "summary.json", summary)
    if cfg.trainer.progress != "off":
        print_result(summary)
    return summary["final"]["val_loss"]
