"""One job, from composed config to a finished run directory.

Build the data, model, optimizer and schedule from their `_target_`s, train,
log every epoch (metrics.jsonl, TensorBoard, terminal), then write summary.json
and print the result table.
"""

from __future__ import annotations

import platform
import signal
import sys
import time
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import dlrun
from dlrun.config import validate
from dlrun.crossval import cross_validate
from dlrun.errors import RunFailed, UserError
from dlrun.lr_find import find_lr
from dlrun.models import build_model, param_counts
from dlrun.report.files import MetricsLog, write_json
from dlrun.report.params import print_params
from dlrun.train.signals import StopOnSignal
from dlrun.report.tensorboard import TensorBoardLog
from dlrun.report.terminal import EpochDisplay, print_result
from dlrun.train import fit
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.device import resolve_device
from dlrun.train.optimizers import build_optimizer
from dlrun.train.regularize import penalty_from_config
from dlrun.train.schedules import build_scheduler, steps_per_epoch


def load_data(cfg: DictConfig, device: torch.device):
    return instantiate(cfg.data, seed=cfg.trainer.seed).to(device)


def build(cfg: DictConfig, device: torch.device, data=None):
    """Data (unless given), model, optimizer and scheduler, wired by the configs' `_target_` lines."""
    torch.manual_seed(cfg.trainer.seed)
    data = load_data(cfg, device) if data is None else data
    model = build_model(cfg.model, data)
    model = model.to(device)
    optimizer = build_optimizer(instantiate(cfg.optim), model.parameters(), device)
    scheduler, interval = build_scheduler(
        cfg.sched, optimizer, epochs=cfg.trainer.epochs,
        steps_per_epoch=steps_per_epoch(len(data.x_train), cfg.trainer.batch_size),
    )
    return data, model, optimizer, scheduler, interval


def build_loss(cfg: DictConfig, data, model):
    """The `loss` group's choice for the data's task and the model's outputs (logits or probabilities)."""
    return instantiate(cfg.loss, task=data.task, outputs=getattr(model, "outputs", "logits"))


def environment(device: torch.device) -> dict:
    return {
        "dlrun": dlrun.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "command": " ".join(["dlrun", *sys.argv[1:]]),
    }


TIMING = ("step_time_s", "epoch_time_s")  # kept out of metrics.jsonl, which is bitwise reproducible


def summarize(rows: list[dict], timed: list[dict], run_dir: Path, params: int,
              device: torch.device, wall: float) -> dict:
    """summary.json: final and best rows, size, device and speed (of the epochs this process ran)."""
    final = rows[-1] if rows else {}
    finite = [r for r in rows if not r.get("non_finite")]
    best = min(finite, key=lambda r: r["val_loss"]) if finite else {}
    steps = sum(r["steps"] for r in timed)
    step_time = sum(r["step_time_s"] for r in timed)
    return {
        "status": "ok",
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
        "eval_share": 1 - step_time / max(sum(r["epoch_time_s"] for r in timed), 1e-12),
        "environment": environment(device),
    }


def run_job(cfg: DictConfig, run_dir: Path | None = None, data=None) -> float:
    """Train one configured run into `run_dir` (Hydra's output directory by default).

    Returns the final validation loss (early stopping: the restored epoch's), which is
    what sweepers minimize. `mode=lr_find` runs the LR range test instead, and
    `cv.folds=N` one run per fold (each given its fold as `data`), returning the mean.
    """
    started = time.perf_counter()
    validate(cfg)
    run_dir = Path(run_dir or HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.trainer.device)
    if cfg.get("mode", "train") == "lr_find":
        data, model, optimizer, _, _ = build(cfg, device)
        return find_lr(cfg, run_dir, data, model, optimizer, build_loss(cfg, data, model))
    if OmegaConf.select(cfg, "cv.folds") is not None and data is None:
        return cross_validate(cfg, run_dir, load_data(cfg, device), train=run_job)
    data, model, optimizer, scheduler, interval = build(cfg, device, data)
    reg = cfg.get("reg") or {}
    penalty = penalty_from_config(cfg.get("reg"))
    augment = instantiate(reg["augment"]) if "augment" in reg else None
    stopper = instantiate(reg["early_stopping"]) if "early_stopping" in reg else None
    loss = build_loss(cfg, data, model)
    params = sum(p.numel() for p in model.parameters())
    layers = param_counts(model)
    if cfg.trainer.progress != "off":
        print_params(layers, params)

    resume = None
    if cfg.trainer.resume is not None:
        resume = load_checkpoint(Path(cfg.trainer.resume) / "checkpoints" / "last.pt", device)
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
    timed = []
    try:
        with StopOnSignal() as stop:
            for row in fit(model, data, optimizer, scheduler, trainer=cfg.trainer,
                           sched_interval=interval, penalty=penalty, checkpoint_dir=checkpoints,
                           resume=resume, should_stop=stop.requested, loss=loss,
                           augment=augment, early_stopping=stopper):
                timed.append(row)
                metrics.append({k: v for k, v in row.items() if k not in TIMING})
                board.epoch(row)
                display.update(row)
    finally:
        display.close()
        metrics.close()
        board.close()

    summary = summarize(metrics.rows, timed, run_dir, params, device, time.perf_counter() - started)
    summary["params_per_layer"] = layers
    if stopper is not None:
        summary["early_stopping"] = stopper.summary()
    if stop.signum is not None:
        summary["status"] = "interrupted"
        write_json(run_dir / "summary.json", summary)
        name = signal.Signals(stop.signum).name
        done = metrics.rows[-1]["epoch"] if metrics.rows else 0
        print(f"dlrun: {name} received: stopped after epoch {done}; continue with: "
              f"dlrun trainer.resume={run_dir}", file=sys.stderr)
        raise SystemExit(128 + stop.signum)
    if summary["final"].get("non_finite"):
        epoch = summary["final"]["epoch"]
        summary.update(status="failed", error=f"the loss became non-finite in epoch {epoch}")
    write_json(run_dir / "summary.json", summary)
    if cfg.trainer.progress != "off":
        print_result(summary)
    if summary["status"] == "failed":
        raise RunFailed(
            f"{summary['error']} (lr {summary['final']['lr']:.3g}); the last finite weights are in "
            f"{run_dir / 'checkpoints'}; try a lower optim.lr or trainer.grad_clip=1.0."
        )
    if stopper is not None and stopper.restored:
        return stopper.best_loss
    return summary["final"]["val_loss"]
