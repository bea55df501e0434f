"""logger=[tensorboard,csv,mlflow]: the same per-epoch numbers, hyperparameters and verdict,
read back from the CSV files and through MLflow's own client."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from conftest import train

from dlrun.errors import UserError

QUICK = ["trainer.epochs=3", "data.n_train=300", "optim.lr=0.01"]


def _jsonl(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _pairs(path) -> dict[str, str]:
    return {r["name"]: r["value"] for r in csv.DictReader(path.read_text().splitlines())}


def test_csv_logger_copies_epochs_hparams_and_verdict(tmp_path, one_thread):
    run = train(tmp_path / "run", *QUICK, "logger=[csv]")
    lines = list(csv.DictReader((run / "csv" / "metrics.csv").read_text().splitlines()))
    rows = _jsonl(run)
    assert [int(line["epoch"]) for line in lines] == [r["epoch"] for r in rows] == [1, 2, 3]
    for line, row in zip(lines, rows):
        assert set(line) >= set(row)
        for key, value in row.items():
            assert float(line[key]) == pytest.approx(value, rel=1e-12)
    assert _pairs(run / "csv" / "hparams.csv")["optim.lr"] == "0.01"
    ending = _pairs(run / "csv" / "summary.csv")
    assert ending["verdict"] == json.loads((run / "diagnosis.json").read_text())["verdict"]
    assert float(ending["objective"]) == pytest.approx(rows[-1]["val_loss"])
    assert not (run / "tb").exists()  # tensorboard was not in the list


def test_mlflow_logger_reads_back_through_mlflows_client(tmp_path, one_thread):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = train(tmp_path / "run", *QUICK, "logger=[tensorboard,mlflow]",
                f"logger.mlflow.tracking_uri='{uri}'", "logger.mlflow.experiment=readback")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("readback")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    assert found.data.params["optim.lr"] == "0.01" and found.data.params["trainer.epochs"] == "3"
    verdict = json.loads((run / "diagnosis.json").read_text())["verdict"]
    assert found.data.tags["verdict"] == verdict
    rows = _jsonl(run)
    for key in ("train_loss", "val_loss", "test_acc", "lr"):
        history = client.get_metric_history(found.info.run_id, key)
        assert [m.step for m in history] == [1, 2, 3]
        assert [m.value for m in history] == pytest.approx([r[key] for r in rows], rel=1e-12)
    assert found.data.metrics["objective"] == pytest.approx(rows[-1]["val_loss"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"curves.png", "summary.json", "diagnosis.json"} <= artifacts
    assert (run / "tb").is_dir()


def test_mlflow_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(UserError, match=r'^logger=mlflow needs MLflow: pip install -e "\.\[mlflow\]"'):
        train(tmp_path / "run", "trainer.epochs=1", "logger=[mlflow]")
