"""Loggers beside TensorBoard (`logger=[tensorboard,csv,mlflow]`): each gets the run's
hyperparameters at the start, every epoch's row, and the summary with the diagnosis
verdict at the end. metrics.jsonl stays the run's own record; these are copies for tools.

- `CsvLog`: <run>/csv/metrics.csv (rewritten whole each epoch: a column that appears
  later, such as a Hessian eigenvalue, gets its header), hparams.csv, summary.csv.
- `MlflowLog`: one MLflow run through `MlflowClient` (no global active run, so parallel
  jobs never share one); SQLite under outputs/ unless a tracking URI is given.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from pathlib import Path

from dlrun.errors import UserError
from dlrun.records import Diagnosis, EpochRow, Summary
from dlrun.records.rows import finite


def _write_csv(path: Path, header: list[str], lines: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    writer.writerows(lines)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(out.getvalue())
    os.replace(tmp, path)


def _ending(summary: Summary, diagnosis: Diagnosis | None) -> dict:
    """What a run ended with, as flat name -> value: status, objective, verdict, final numbers."""
    out = {"status": summary.status, "objective": summary.objective,
           "verdict": str(diagnosis.verdict) if diagnosis else summary.verdict,
           "epochs": summary.epochs, "best_epoch": summary.best.epoch if summary.best else None,
           "wall_time_s": summary.wall_time_s}
    final = summary.final.to_json() if summary.final else {}
    out.update({f"final_{k}": v for k, v in final.items() if k != "epoch"})
    return out


class CsvLog:
    def __init__(self, run_dir: Path, knobs):
        self.dir = Path(run_dir) / knobs.dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []

    def start(self, hparams: dict, earlier: list[EpochRow]) -> None:
        _write_csv(self.dir / "hparams.csv", ["name", "value"],
                   [{"name": k, "value": v} for k, v in hparams.items()])
        self.rows = [row.to_json() for row in earlier]

    def epoch(self, row: EpochRow) -> None:
        self.rows.append(row.to_json())
        header: list[str] = []
        for line in self.rows:
            header += [k for k in line if k not in header]
        _write_csv(self.dir / "metrics.csv", header, self.rows)

    def finish(self, summary: Summary, diagnosis: Diagnosis | None, run_dir: Path) -> None:
        _write_csv(self.dir / "summary.csv", ["name", "value"],
                   [{"name": k, "value": v} for k, v in _ending(summary, diagnosis).items()])


def tracking_uri(knobs) -> str:
    """`logger.mlflow.tracking_uri`, else $MLFLOW_TRACKING_URI, else SQLite under outputs/
    (MLflow 3 refuses its old ./mlruns file store by default)."""
    if knobs.tracking_uri:
        return knobs.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    path = Path("outputs", "mlflow.db").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class MlflowLog:
    def __init__(self, run_dir: Path, knobs):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UserError('logger=mlflow needs MLflow: pip install -e ".[mlflow]" '
                            "(or drop mlflow from logger=[...]).") from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its schema-migration chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
        uri = tracking_uri(knobs)
        self.client = MlflowClient(uri)
        found = self.client.get_experiment_by_name(knobs.experiment)
        # a local database keeps its artifacts beside it, not in the working directory
        beside = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri() \
            if uri.startswith("sqlite:///") else None
        experiment = found.experiment_id if found else self.client.create_experiment(
            knobs.experiment, artifact_location=beside)
        run_dir = Path(run_dir)
        self.run_id = self.client.create_run(
            experiment, run_name=run_dir.name, tags={"dlrun.run_dir": str(run_dir.resolve())}
        ).info.run_id

    def start(self, hparams: dict, earlier: list[EpochRow]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in hparams.items()])
        for row in earlier:
            self.epoch(row)

    def epoch(self, row: EpochRow) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, row.epoch) for k, v in row.to_json().items()
                   if k != "epoch" and finite(v)]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: Summary, diagnosis: Diagnosis | None, run_dir: Path) -> None:
        ending = _ending(summary, diagnosis)
        if ending["verdict"]:
            self.client.set_tag(self.run_id, "verdict", ending["verdict"])
        if finite(summary.objective):
            self.client.log_metric(self.run_id, "objective", summary.objective)
        for name in ("curves.png", "summary.json", "diagnosis.json"):
            if (Path(run_dir) / name).is_file():
                self.client.log_artifact(self.run_id, str(Path(run_dir) / name))
        self.client.set_terminated(self.run_id, "FINISHED" if summary.status == "ok" else "FAILED")


LOGGERS = {"csv": CsvLog, "mlflow": MlflowLog}  # tensorboard: dlrun.report.tensorboard


def build_loggers(cfg, run_dir: Path) -> list:
    """The loggers `logger=[...]` names, besides TensorBoard."""
    chosen = cfg.get("logger") or {}
    return [LOGGERS[name](run_dir, chosen[name]) for name in chosen if name in LOGGERS]


def uses_tensorboard(cfg) -> bool:
    return "tensorboard" in (cfg.get("logger") or {"tensorboard": None})
