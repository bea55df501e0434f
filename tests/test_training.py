"""Real short runs: every run-directory file with its documented keys, and exact resumption."""

import json

import pytest
import torch
from conftest import compose, train

from dlrun.records import EpochRow, best_row, read_rows
from dlrun.runner import run_job

PAIRS = [("linear", "digits"), ("mlp", "digits"), ("cnn", "digits"),
         ("linear", "sine"), ("mlp", "sine")]
ROW_KEYS = {"epoch", "train_loss", "val_loss", "test_loss", "lr", "grad_norm"}
METRIC = {"digits": "acc", "sine": "mae"}


@pytest.mark.parametrize(("model", "data"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_run_directory_holds_every_file(run_dir, model, data):
    train(run_dir, f"model={model}", f"data={data}", "trainer.epochs=2")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    metric = METRIC[data]
    for row in rows:
        assert ROW_KEYS | {f"{s}_{metric}" for s in ("train", "val", "test")} <= row.keys()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"final", "best", "params", "device", "wall_time_s", "steps_per_s"} <= summary.keys()
    assert summary["status"] == "ok" and summary["params"] > 0
    assert summary["final"]["epoch"] == 2
    for name in ("last.pt", "best.pt"):
        state = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert "model" in state
    events = list((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert {e.parent.name for e in events} >= {"tb", "train", "val", "test"}


def test_linear_underfits_sine_where_mlp_does_not(tmp_path):
    common = ["data=sine", "trainer.epochs=60", "optim.lr=0.01"]
    linear = train(tmp_path / "linear", "model=linear", *common)
    mlp = train(tmp_path / "mlp", "model=mlp", *common)
    loss = {p.name: read_rows(p / "metrics.jsonl")[-1].loss("train") for p in (linear, mlp)}
    assert loss["linear"] > 0.15  # a line cannot follow a sine
    assert loss["mlp"] < loss["linear"] / 5


def test_full_batch_takes_one_step_per_epoch(run_dir):
    train(run_dir, "trainer.batch_size=null", "trainer.epochs=3")
    assert [r.steps for r in read_rows(run_dir / "metrics.jsonl")] == [1, 1, 1]


def _metrics_without_timing(path):
    return [json.dumps(row.to_json(), sort_keys=True) for row in read_rows(path)]


def test_resume_continues_to_the_same_result(tmp_path):
    overrides = ["model.dropout=0.2", "trainer.epochs=4", "trainer.progress=off"]
    whole = tmp_path / "whole"
    run_job(compose(*overrides), run_dir=whole)
    part = tmp_path / "part"
    run_job(compose(*overrides[:-2], "trainer.epochs=2", "trainer.progress=off"), run_dir=part)
    assert len(read_rows(part / "metrics.jsonl")) == 2
    run_job(compose(*overrides, f"trainer.resume={part}"), run_dir=part)
    assert _metrics_without_timing(part / "metrics.jsonl") == _metrics_without_timing(
        whole / "metrics.jsonl"
    )


def test_same_seed_gives_identical_metrics_file(tmp_path):
    for name in ("a", "b"):
        train(tmp_path / name, "model.dropout=0.1")
    assert (tmp_path / "a/metrics.jsonl").read_bytes() == (tmp_path / "b/metrics.jsonl").read_bytes()


def test_non_finite_loss_fails_cleanly_and_keeps_finite_checkpoint(run_dir):
    from dlrun.errors import RunFailed

    with pytest.raises(RunFailed, match="non-finite"):
        train(run_dir, "optim=sgd", "optim.lr=1e6", "trainer.epochs=3")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    last = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in last["model"].values())


def test_the_best_epoch_is_the_lowest_finite_validation_loss():
    """One rule for summary.json, whether the run finished or a sweep recorded its failure."""
    rows = [EpochRow.from_json(r) for r in (
        {"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.3},
        {"epoch": 3, "val_loss": None}, {"epoch": 4, "val_loss": float("nan"), "non_finite": True})]
    assert best_row(rows).epoch == 2
    assert best_row(rows[2:]) is None and best_row([]) is None


def test_out_of_memory_is_one_line_suggesting_a_smaller_batch(run_dir, monkeypatch):
    from dlrun.errors import UserError
    from dlrun.models.mlp import MLP

    def exhausted(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(MLP, "forward", exhausted)
    with pytest.raises(UserError, match="trainer.batch_size=32"):
        train(run_dir, "trainer.batch_size=64", "diagnose=off")


def test_environment_is_recorded(run_dir):
    train(run_dir, "diagnose=off", "data.n_train=100")
    env = json.loads((run_dir / "summary.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["dlrun"]
    assert env["command"].startswith("dlrun")
    assert "git_commit" in env and "device_name" in env
