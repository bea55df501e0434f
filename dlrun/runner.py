"""One job, from a composed config to a finished run directory.

`run_job` decides what kind of job this is (a training run, a learning-rate range
test, a cross-validation, or one rank of a data-parallel run); `train_run` trains
and logs every epoch (metrics.jsonl, TensorBoard, terminal); `finish` writes
summary.json and diagnosis.json and says how the run ended.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun.build import Components, build, build_components, build_loss, load_data
from dlrun.config import validate
from dlrun.crossval import cross_validate
from dlrun.diagnose import EpochMonitor, diagnose_run
from dlrun.errors import RunFailed, UserError
from dlrun.lr_find import find_lr
from dlrun.models import param_counts
from dlrun.records import EpochRow
from dlrun.report import diagnosis as diagnosis_report
from dlrun.report.files import MetricsLog, write_json
from dlrun.report.hparams import log_hparams
from dlrun.report.params import print_params
from dlrun.report.summary import TIMING, summarize
from dlrun.report.tensorboard import TensorBoardLog
from dlrun.report.terminal import EpochDisplay, print_result, print_samples
from dlrun.train import distributed, fit
from dlrun.train.accel import check_precision, configure_backend, peak_memory
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.device import resolve_device
from dlrun.train.generate import samples
from dlrun.train.signals import StopOnSignal


def run_job(cfg: DictConfig, run_dir: Path | None = None, data=None,
            overrides: list[str] | None = None) -> float:
    """Run one configured job into `run_dir` (Hydra's output directory by default).

    Returns what sweepers minimize: the validation loss of the weights the run ends
    with (the restored epoch's under early stopping; the mean over folds for
    `cv.folds=N`). `overrides` are what the user typed (remedies start from them);
    by default Hydra's. `data` replaces the configured dataset (one fold of a CV).
    """
    started = time.perf_counter()
    with _out_of_memory_is_a_user_error(cfg):
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
        typed = _user_overrides(overrides)

        if cfg.get("mode", "train") == "lr_find":
            data, model, optimizer, _, _ = build(cfg, device)
            loss = build_loss(cfg, data, model)
            return find_lr(cfg, run_dir, data, model, optimizer, loss, overrides=typed)
        if OmegaConf.select(cfg, "cv.folds") is not None and data is None:
            return cross_validate(cfg, run_dir, load_data(cfg, device), train=run_job, overrides=typed)
        run = build_components(cfg, device, data)
        return train_run(cfg, run_dir, run, world=world, threads=threads, overrides=typed,
                         started=started)


def train_run(cfg: DictConfig, run_dir: Path, run: Components, *, world, threads: int,
              overrides: list[str], started: float) -> float:
    """Train `run`, logging each epoch as it ends, then `finish`."""
    device = run.data.x_train.device
    layers = param_counts(run.model)
    quiet = cfg.trainer.progress == "off"
    if not quiet:
        print_params(layers, run.params)
    resume = _resume_state(cfg, run.model, device)
    start = resume["epoch"] if resume else 0

    metrics = MetricsLog(run_dir / "metrics.jsonl", keep_through_epoch=start)
    board = TensorBoardLog(run_dir, purge_step=start + 1 if resume else None)
    log_hparams(board.run, cfg)  # the HPARAMS tab compares runs (and sweep jobs)
    display = EpochDisplay(cfg.trainer.epochs, cfg.trainer.progress, start)
    monitor = EpochMonitor(cfg.diagnose, run.data, run.loss, cfg.trainer.seed)
    timed, generated = [], {}
    try:
        with StopOnSignal() as stop:
            for row in fit(run.model, run.data, run.optimizer, run.scheduler, trainer=cfg.trainer,
                           sched_interval=run.interval, penalty=run.penalty, loss=run.loss,
                           augment=run.augment, early_stopping=run.stopper, world=world,
                           checkpoint_dir=run_dir / "checkpoints" if cfg.trainer.checkpoint else None,
                           resume=resume, should_stop=stop.requested,
                           grad_norms=cfg.diagnose.enabled):
                warnings = monitor.epoch(row, run.model)  # may add hessian_* (diagnose=full)
                timed.append(row)
                metrics.append({k: v for k, v in row.items() if k not in TIMING})
                board.epoch(row)
                display.update(row)
                for warning in [] if quiet else warnings:
                    print(f"dlrun: warning: {warning}", file=sys.stderr)
            # token models: a generated sample (text) or decoded test examples (seq2seq)
            if stop.signum is None and not (timed and timed[-1].get("non_finite")):
                generated = samples(run.model, run.data, cfg.trainer.seed)
            for tag, text in generated.items():
                board.text(tag, "    " + text.replace("\n", "\n    "))  # a markdown code block
    finally:
        display.close()
        metrics.close()
        board.close()

    summary = summarize(metrics.rows, timed, run_dir, run.params, device,
                        time.perf_counter() - started)
    summary.update(params_per_layer=layers, world_size=world.size if world is not None else 1,
                   threads=threads, **peak_memory(device))
    if generated:
        summary["samples"] = generated
    return finish(cfg, run_dir, run, summary, metrics.rows, stop.signum, overrides)


def finish(cfg: DictConfig, run_dir: Path, run: Components, summary: dict, rows: list[dict],
           signum: int | None, overrides: list[str]) -> float:
    """Write summary.json (and diagnosis.json), print the result; say how the run ended."""
    # what the job returns to Hydra's sweepers: the val loss of the weights the run ends with
    summary["objective"] = summary["final"].get("val_loss")
    stopper = run.stopper
    if stopper is not None:
        summary["early_stopping"] = stopper.summary()
        if stopper.restored:
            summary["objective"] = stopper.best_loss
    if signum is not None:
        summary["status"] = "interrupted"
        write_json(run_dir / "summary.json", summary)
        done = rows[-1]["epoch"] if rows else 0
        print(f"dlrun: {signal.Signals(signum).name} received: stopped after epoch {done}; "
              f"continue with: dlrun trainer.resume={run_dir}", file=sys.stderr)
        raise SystemExit(128 + signum)
    if summary["final"].get("non_finite"):
        epoch = summary["final"]["epoch"]
        summary.update(status="failed", error=f"the loss became non-finite in epoch {epoch}")

    diagnosis = diagnose_run(
        cfg, run.model, run.data, [EpochRow.from_json(r) for r in rows], run.loss, overrides,
        train_seconds=summary["wall_time_s"],
        final_epoch=stopper.best_epoch if stopper is not None and stopper.restored else None,
    )
    if diagnosis is not None:
        write_json(run_dir / "diagnosis.json", diagnosis.to_json())
        diagnosis_report.write_tensorboard(run_dir, diagnosis)
        summary["verdict"] = str(diagnosis.verdict)
    write_json(run_dir / "summary.json", summary)
    if cfg.trainer.progress != "off":
        print_result(summary)
        print_samples(summary.get("samples", {}))
        if diagnosis is not None:
            diagnosis_report.print_diagnosis(diagnosis)
    if summary["status"] == "failed":
        raise RunFailed(
            f"{summary['error']} (lr {summary['final']['lr']:.3g}); the last finite weights are in "
            f"{run_dir / 'checkpoints'}; try a lower optim.lr or trainer.grad_clip=1.0."
        )
    return summary["objective"]


def _resume_state(cfg: DictConfig, model: torch.nn.Module, device: torch.device) -> dict | None:
    """The checkpoint `trainer.resume` names, once it is known to fit this model."""
    if cfg.trainer.resume is None:
        return None
    state = load_checkpoint(Path(cfg.trainer.resume) / "checkpoints" / "last.pt", device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise UserError(
            f"trainer.resume={cfg.trainer.resume}: its checkpoint holds a different model than "
            "this command builds; resume without changing model.* overrides, or start a fresh run."
        ) from None
    return state


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
