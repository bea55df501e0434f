"""One job, from composed config to a finished run directory.

Build the data, model, optimizer and schedule from their `_target_`s, train,
log every epoch (metrics.jsonl, TensorBoard, terminal), then write summary.json
and print the result table.
"""

from __future__ import annotations

import contextlib
import platform
import signal
import subprocess
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
from dlrun.diagnose import EpochMonitor, diagnose_run
from dlrun.errors import RunFailed, UserError
from dlrun.lr_find import find_lr
from dlrun.models import build_model, param_counts, user_errors_unwrapped
from dlrun.report import diagnosis as diagnosis_report
from dlrun.report.files import MetricsLog, write_json
from dlrun.report.hparams import log_hparams
from dlrun.report.params import print_params
from dlrun.report.tensorboard import TensorBoardLog
from dlrun.report.terminal import EpochDisplay, print_result, print_samples
from dlrun.train import distributed, fit
from dlrun.train.accel import check_precision, configure_backend, peak_memory, prepare_model
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.device import resolve_device
from dlrun.train.generate import samples
from dlrun.train.optimizers import build_optimizer
from dlrun.train.regularize import penalty_from_config
from dlrun.train.schedules import build_scheduler, steps_per_epoch
from dlrun.train.signals import StopOnSignal


def load_data(cfg: DictConfig, device: torch.device):
    return instantiate(cfg.data, seed=cfg.trainer.seed).to(device)


def build(cfg: DictConfig, device: torch.device, data=None):
    """Data (unless given), model, optimizer and scheduler, wired by the configs' `_target_` lines."""
    torch.manual_seed(cfg.trainer.seed)
    data = load_data(cfg, device) if data is None else data
    model = build_model(cfg.model, data).to(device)
    model = prepare_model(model, cfg.trainer, device, image_inputs=len(data.input_shape) == 3)
    optimizer = build_optimizer(instantiate(cfg.optim), model.parameters(), device)
    scheduler, interval = build_scheduler(
        cfg.sched, optimizer, epochs=cfg.trainer.epochs,
        steps_per_epoch=steps_per_epoch(len(data.x_train), cfg.trainer.batch_size),
    )
    return data, model, optimizer, scheduler, interval


def build_loss(cfg: DictConfig, data, model):
    """The `loss` group's choice for the data's task and the model's outputs (logits or probabilities)."""
    with user_errors_unwrapped():
        return instantiate(cfg.loss, task=data.task, outputs=getattr(model, "outputs", "logits"))


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
    return {
        "dlrun": dlrun.__version__,
        "git_commit": _git_commit(),
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


@contextlib.contextmanager
def _out_of_memory_is_a_user_error(cfg: DictConfig):
    try:
        yield
    except torch.OutOfMemoryError:
        batch = cfg.trainer.batch_size
        smaller = f"trainer.batch_size={max(1, batch // 2)}" if batch else "trainer.batch_size=256"
        raise UserError(
            f"the device ran out of memory at trainer.batch_size={batch}; try {smaller} "
            "(or a smaller model)."
        ) from None


def _parallel_jobs() -> int:
    """How many jobs a parallel launcher (joblib's n_jobs) runs at once beside this one."""
    if not HydraConfig.initialized():
        return 1
    return int(OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=1) or 1)


def _user_overrides(given: list[str] | None) -> list[str]:
    """What the user typed (the remedies' commands start from it): given, or Hydra's task overrides."""
    if given is not None:
        return list(given)
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_job(cfg: DictConfig, run_dir: Path | None = None, data=None,
            overrides: list[str] | None = None) -> float:
    """Train one configured run; see `_run_job`. Running out of device memory is a user error."""
    with _out_of_memory_is_a_user_error(cfg):
        return _run_job(cfg, run_dir, data, overrides)


def _run_job(cfg: DictConfig, run_dir: Path | None = None, data=None,
             overrides: list[str] | None = None) -> float:
    """Train one configured run into `run_dir` (Hydra's output directory by default).

    Returns the final validation loss (early stopping: the restored epoch's), which is
    what sweepers minimize. `mode=lr_find` runs the LR range test instead, and
    `cv.folds=N` one run per fold (each given its fold as `data`), returning the mean.
    """
    started = time.perf_counter()
    validate(cfg)
    run_dir = Path(run_dir or HydraConfig.get().runtime.output_dir)
    world = distributed.setup(cfg.trainer)  # one rank of several (spawned, torchrun, Slurm)
    if world is None and cfg.trainer.devices > 1:  # trainer.devices processes each run this job
        return distributed.spawn(run_job, cfg, run_dir, data, overrides)
    if world is not None and not world.is_main:  # only rank 0 writes the run directory
        cfg, run_dir = world.follower(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = world.device if world is not None else resolve_device(cfg.trainer.device)
    check_precision(cfg.trainer.precision, device)
    ranks_here = world.local_size if world is not None else 1
    threads = configure_backend(cfg.trainer, device, parallel_jobs=_parallel_jobs() * ranks_here)
    if cfg.get("mode", "train") == "lr_find":
        data, model, optimizer, _, _ = build(cfg, device)
        return find_lr(cfg, run_dir, data, model, optimizer, build_loss(cfg, data, model),
                       overrides=_user_overrides(overrides))
    if OmegaConf.select(cfg, "cv.folds") is not None and data is None:
        return cross_validate(cfg, run_dir, load_data(cfg, device), train=run_job,
                              overrides=_user_overrides(overrides))
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
    log_hparams(board.run, cfg)  # the HPARAMS tab compares runs (and sweep jobs)
    display = EpochDisplay(cfg.trainer.epochs, cfg.trainer.progress, start)
    checkpoints = run_dir / "checkpoints" if cfg.trainer.checkpoint else None
    timed = []
    monitor = EpochMonitor(cfg.diagnose, data, loss, cfg.trainer.seed)
    try:
        with StopOnSignal() as stop:
            for row in fit(model, data, optimizer, scheduler, trainer=cfg.trainer,
                           sched_interval=interval, penalty=penalty, checkpoint_dir=checkpoints,
                           resume=resume, should_stop=stop.requested, loss=loss,
                           augment=augment, early_stopping=stopper, world=world):
                warnings = monitor.epoch(row, model)  # may add hessian_* (diagnose.hessian_every)
                timed.append(row)
                metrics.append({k: v for k, v in row.items() if k not in TIMING})
                board.epoch(row)
                display.update(row)
                if cfg.trainer.progress != "off":
                    for warning in warnings:
                        print(f"dlrun: warning: {warning}", file=sys.stderr)
            # token models: a generated sample (text) or decoded test examples (seq2seq)
            finished = stop.signum is None and not (timed and timed[-1].get("non_finite"))
            generated = samples(model, data, cfg.trainer.seed) if finished else {}
            for tag, text in generated.items():
                board.text(tag, "    " + text.replace("\n", "\n    "))  # markdown code block
    finally:
        display.close()
        metrics.close()
        board.close()

    summary = summarize(metrics.rows, timed, run_dir, params, device, time.perf_counter() - started)
    summary["params_per_layer"] = layers
    summary["world_size"] = world.size if world is not None else 1  # data-parallel ranks
    if generated:
        summary["samples"] = generated
    summary.update(threads=threads, **peak_memory(device))
    # what the job returns to Hydra's sweepers: the val loss of the weights the run ends with
    summary["objective"] = summary["final"].get("val_loss")
    if stopper is not None:
        summary["early_stopping"] = stopper.summary()
        if stopper.restored:
            summary["objective"] = stopper.best_loss
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
    diagnosis = diagnose_run(
        cfg, model, data, metrics.rows, loss, _user_overrides(overrides),
        train_seconds=summary["wall_time_s"],
        final_epoch=stopper.best_epoch if stopper is not None and stopper.restored else None,
    )
    if diagnosis is not None:
        write_json(run_dir / "diagnosis.json", diagnosis)
        diagnosis_report.write_tensorboard(run_dir, diagnosis)
        summary["verdict"] = diagnosis["verdict"]
    write_json(run_dir / "summary.json", summary)
    if cfg.trainer.progress != "off":
        print_result(summary)
        print_samples(generated)
        if diagnosis is not None:
            diagnosis_report.print_diagnosis(diagnosis)
    if summary["status"] == "failed":
        raise RunFailed(
            f"{summary['error']} (lr {summary['final']['lr']:.3g}); the last finite weights are in "
            f"{run_dir / 'checkpoints'}; try a lower optim.lr or trainer.grad_clip=1.0."
        )
    return summary["objective"]
