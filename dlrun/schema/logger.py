"""Schemas of the `logger` group: where a run's numbers go besides metrics.jsonl.

Several at once, like `reg`: `logger=[tensorboard,csv,mlflow]` (default `[tensorboard]`).
Each option lives under its own key (`logger.mlflow.tracking_uri`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import knob


@dataclass
class TensorBoardConfig:
    pass  # tb/ in the run directory: dlrun.report.tensorboard


@dataclass
class CsvConfig:
    dir: str = knob("csv", "folder in the run directory for metrics.csv, hparams.csv, summary.csv")


@dataclass
class MlflowConfig:
    tracking_uri: str | None = knob(
        None, "an MLflow tracking URI (http://host:5000, sqlite:///path.db); null: "
        "$MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db under the working directory")
    experiment: str = knob("dlrun", "the MLflow experiment the runs are filed under")


SCHEMAS = {
    "_schema_logger_tensorboard": TensorBoardConfig,
    "_schema_logger_csv": CsvConfig,
    "_schema_logger_mlflow": MlflowConfig,
}
