"""A training run as a recipe: setup -> train -> finish, around one `Summary`; and the `Job`
every kind of job starts from.

`setup` builds the run's parts and its logs (and picks its threads); `train` runs `fit`
and logs every epoch as it ends (metrics.jsonl, TensorBoard, terminal); `finish` fills in
the summary, writes summary.json, diagnoses the run, writes summary.json again with the
verdict (so a crash in the diagnosis never costs the run its summary), draws curves.png,
and says how the run ended.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from dlrun.build import build_components
from dlrun.data import Dataset
from dlrun.diagnose import EpochMonitor, diagnose_run
from dlrun.errors import RunFailed, UserError
from dlrun.models import param_counts
from dlrun.overrides import command, run_flags
from dlrun.records import Diagnosis, EpochRow, Summary
from dlrun.report import diagnosis as diagnosis_report
from dlrun.report.files import MetricsLog, write_json
from dlrun.report.hparams import hparams_of, log_hparams
from dlrun.report.loggers import build_loggers, uses_tensorboard
from dlrun.report.params import print_params
from dlrun.report.pictures import save_curves
from dlrun.report.summary import summarize
from dlrun.report.tensorboard import TensorBoardLog
from dlrun.report.terminal import EpochDisplay, print_result, print_samples
from dlrun.train import fit
from dlrun.train.accel import peak_memory
from dlrun.train.checkpoint import load_checkpoint
from dlrun.train.distributed import World
from dlrun.train.generate import samples
from dlrun.train.signals import StopOnSignal
from dlrun.train.speed_check import SpeedCheck
from dlrun.train.threads import use_threads

# sees each epoch's row as it ends; a non-empty answer stops the run, saying why (a pruner)
EpochHook = Callable[[EpochRow], "str | None"]


@dataclass
class Job:
    """What every kind of job starts from (`dlrun.runner` fills it in)."""

    cfg: DictConfig
    run_dir: Path
    world: World  # this process's place among the ranks, and its device
    overrides: list[str]  # what the user typed: the remedies' commands start from it
    data: Dataset | None  # one fold of a cross-validation; None: the config's dataset
    started: float  # perf_counter at the job's start
    parallel: int = 1  # processes sharing this machine's cores: parallel jobs x local ranks
    on_epoch: EpochHook | None = None  # a search's trial: reports each epoch, may prune the run


class TrainRun:
    """One training run of a `Job`; `run()` is setup -> train -> finish and returns the objective."""

    def __init__(self, job: Job):
        self.job, self.cfg, self.run_dir = job, job.cfg, job.run_dir
        self.quiet = self.cfg.trainer.progress == "off"
        self.timed: list[EpochRow] = []  # the rows this process trained (they carry timing)
        self.generated: dict[str, str] = {}
        self.signum: int | None = None
        self.label = ""  # what the run's warnings start with (a stacked job names itself)
        self.shared_probes: dict | None = None  # diagnosis probes shared with other runs
        self.pruned: str | None = None  # why the search's pruner stopped this run

    def run(self) -> float:
        self.setup()
        self.train()
        return self.finish()

    def setup(self) -> None:
        """The parts (model, data, optimizer, ...), threads, the resumed state and the logs."""
        cfg, job = self.cfg, self.job
        self.parts = build_components(cfg, job.world.device, job.data)
        self.threads = use_threads(cfg.trainer, self.parts.model, self.parts.data, job.parallel)
        self.layers = param_counts(self.parts.model)
        if not self.quiet:
            print_params(self.layers, self.parts.params)
        self.speed = SpeedCheck(self.parts, cfg.trainer, job.world.device)
        self.warn(self.speed.before_training())  # a precision slower than fp32 here
        self.resume = _resume_state(cfg, self.parts.model, job.world.device)
        start = self.resume["epoch"] if self.resume else 0
        self.open_logs(start)
        self.start = start
        self.display = EpochDisplay(cfg.trainer.epochs, cfg.trainer.progress, start)

    def open_logs(self, start: int) -> None:
        """metrics.jsonl (kept through epoch `start` when resuming), TensorBoard with the
        HParams record, the other loggers, and the epoch monitor's warnings."""
        cfg = self.cfg
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", keep_through_epoch=start)
        self.board = TensorBoardLog(self.run_dir, purge_step=start + 1 if start else None,
                                    enabled=uses_tensorboard(cfg))
        if self.board.enabled:
            log_hparams(self.board.run, cfg)  # the HPARAMS tab compares runs (and sweep jobs)
        self.loggers = build_loggers(cfg, self.run_dir)  # logger=[csv,mlflow]
        for logger in self.loggers:
            logger.start(hparams_of(cfg), self.metrics.rows)
        self.monitor = EpochMonitor(cfg.diagnose, self.parts.data, self.parts.loss, cfg.trainer.seed)

    def train(self) -> None:
        """`fit`, logging each epoch as it ends; then a token model's samples."""
        cfg, parts = self.cfg, self.parts
        checkpoints = self.run_dir / "checkpoints" if cfg.trainer.checkpoint else None
        try:
            with StopOnSignal() as stop:
                def should_stop() -> bool:
                    return stop.requested() or self.pruned is not None

                for row in fit(parts, cfg.trainer, world=self.job.world, checkpoint_dir=checkpoints,
                               resume=self.resume, should_stop=should_stop,
                               grad_norms=cfg.diagnose.enabled):
                    self.log(row)
                self.signum = stop.signum
                # token models: a generated sample (text) or decoded test examples (seq2seq)
                if stop.signum is None and self.pruned is None and not (
                        self.timed and self.timed[-1].non_finite):
                    self.generated = samples(parts.model, parts.data, cfg.trainer.seed)
                for tag, text in self.generated.items():
                    self.board.text(tag, "    " + text.replace("\n", "\n    "))  # markdown code
        finally:
            self.display.close()
            self.metrics.close()
            self.board.close()

    def log(self, row: EpochRow) -> None:
        self.record(row)
        self.display.update(row)
        self.warn(self.speed.after_epoch(row, self.start + 1))  # compiling slower than eager
        if self.job.on_epoch is not None and self.pruned is None:
            self.pruned = self.job.on_epoch(row)

    def record(self, row: EpochRow) -> None:
        """The epoch into the run's files (metrics.jsonl, TensorBoard) and its warnings."""
        warnings = self.monitor.epoch(row, self.parts.model)  # may add hessian_* (diagnose=full)
        self.timed.append(row)
        self.metrics.append(row)
        self.board.epoch(row)
        for logger in self.loggers:
            logger.epoch(row)
        for warning in [] if self.quiet else warnings:
            print(f"dlrun: warning: {self.label}{warning}", file=sys.stderr)

    @staticmethod
    def warn(warning: str | None) -> None:
        if warning is not None:
            print(f"dlrun: warning: {warning}", file=sys.stderr)

    def finish(self) -> float:
        """summary.json, then the diagnosis and summary.json with its verdict; the objective."""
        summary = self.summary()
        path = self.run_dir / "summary.json"
        if self.signum is not None:
            summary.status = "interrupted"
            write_json(path, summary.to_json())
            self.close_loggers(summary, None)
            done = summary.final.epoch if summary.final else 0
            print(f"dlrun: {signal.Signals(self.signum).name} received: stopped after epoch "
                  f"{done}; continue with: {command([f'trainer.resume={self.run_dir}'], run_flags())}",
                  file=sys.stderr)
            raise SystemExit(128 + self.signum)
        if self.pruned is not None:  # a search's trial, stopped early: no diagnosis of it
            summary.status, summary.error = "pruned", self.pruned
            write_json(path, summary.to_json())
            return summary.objective
        if summary.final is not None and summary.final.non_finite:
            summary.status = "failed"
            summary.error = f"the loss became non-finite in epoch {summary.final.epoch}"
        write_json(path, summary.to_json())  # before the diagnosis, which may take long or fail
        diagnosis = self.diagnose(summary)
        if diagnosis is not None:
            summary.verdict = str(diagnosis.verdict)
            write_json(path, summary.to_json())
        save_curves(self.run_dir, self.metrics.rows, diagnosis, self.board.enabled)  # warns only
        self.close_loggers(summary, diagnosis)
        if not self.quiet:
            print_result(summary)
            print_samples(summary.samples or {})
            if diagnosis is not None:
                diagnosis_report.print_diagnosis(diagnosis)
        if summary.status == "failed":
            raise RunFailed(
                f"{summary.error} (lr {summary.final.lr:.3g}); the last finite weights are in "
                f"{self.run_dir / 'checkpoints'}; try a lower optim.lr or trainer.grad_clip=1.0."
            )
        return summary.objective

    def close_loggers(self, summary: Summary, diagnosis: Diagnosis | None) -> None:
        for logger in self.loggers:
            logger.finish(summary, diagnosis, self.run_dir)

    def summary(self) -> Summary:
        """The run's summary in memory: its rows, speed, size, and how it ended."""
        parts, world, stopper = self.parts, self.job.world, self.parts.stopper
        summary = summarize(self.metrics.rows, self.timed, self.run_dir, parts.params,
                            world.device, time.perf_counter() - self.job.started)
        summary.params_per_layer, summary.world_size, summary.threads = (
            self.layers, world.size, self.threads)
        summary.host_peak_mb, summary.device_peak_mb = peak_memory(world.device)
        summary.samples = self.generated or None
        # what the job returns to Hydra's sweepers: the val loss of the weights the run ends with
        summary.objective = summary.final.loss("val") if summary.final else None
        if stopper is not None:
            summary.early_stopping = stopper.summary()
            if stopper.restored:
                summary.objective = stopper.best_loss
        return summary

    def train_seconds(self, summary: Summary) -> float | None:
        """The run's own time: the diagnosis's probes may spend probe_budget x this."""
        return summary.wall_time_s

    def diagnose(self, summary: Summary) -> Diagnosis | None:
        """The diagnosis (None with diagnose=off, or when it fails: the run's files stay and
        a one-line warning says so), written to diagnosis.json and TensorBoard."""
        parts, stopper = self.parts, self.parts.stopper
        try:
            diagnosis = diagnose_run(
                self.cfg, parts.model, parts.data, self.metrics.rows, parts.loss,
                self.job.overrides, train_seconds=self.train_seconds(summary),
                final_epoch=stopper.best_epoch if stopper is not None and stopper.restored else None,
                shared_probes=self.shared_probes,
                run_dir=self.run_dir if self.cfg.trainer.checkpoint else None,
            )
            if diagnosis is not None:
                write_json(self.run_dir / "diagnosis.json", diagnosis.to_json())
                if self.board.enabled:
                    diagnosis_report.write_tensorboard(self.run_dir, diagnosis)
        except Exception as error:  # noqa: BLE001  the run is done; its files must survive
            print(f"dlrun: warning: the diagnosis failed ({type(error).__name__}: {error}); "
                  f"the run's files in {self.run_dir} are complete; "
                  "rerun with diagnose=off to skip it", file=sys.stderr)
            return None
        return diagnosis


def _resume_state(cfg, model: torch.nn.Module, device: torch.device) -> dict | None:
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
