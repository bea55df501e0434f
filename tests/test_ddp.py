"""Data-parallel training: 2 CPU processes (gloo) reproduce 1 process with the same global batch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import train

# 203 training rows in batches of 50: the last global batch (3 rows) splits 2 + 1 over the
# ranks, so the loss weighting has to be exact for the runs to agree. A clipping threshold
# that never bites makes every step compute the gradient norm, which diagnose=off would skip
COMMON = [
    "diagnose=off",
    "trainer.grad_clip=1000",
    "data.n_train=203",
    "trainer.batch_size=50",
    "trainer.device=cpu",
    "trainer.epochs=2",
    "optim=sgd",
    "optim.lr=0.1",
    "optim.momentum=0.9",
]
COMPARED = (
    "train_loss",
    "val_loss",
    "test_loss",
    "train_acc",
    "val_acc",
    "test_acc",
    "batch_loss",
    "grad_norm",
)


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("dlrun-rank*")}


def assert_same_training(one: list[dict], two: list[dict]) -> None:
    assert [r["epoch"] for r in one] == [r["epoch"] for r in two] == [1, 2]
    for a, b in zip(one, two):
        for key in COMPARED:
            assert math.isclose(a[key], b[key], rel_tol=1e-5, abs_tol=1e-7), (key, a[key], b[key])


def test_two_gloo_processes_train_like_one(tmp_path):
    before = scratch_dirs()
    one = train(tmp_path / "one", *COMMON)
    two = train(tmp_path / "two", *COMMON, "trainer.devices=2")
    assert_same_training(rows(one), rows(two))

    # rank 0 alone wrote the run directory; rank 1's scratch directory is gone
    summary = json.loads((two / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["epochs"] == 2
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert scratch_dirs() == before


def test_devices_must_be_a_positive_count(tmp_path):
    from dlrun.errors import UserError

    with pytest.raises(UserError, match="trainer.devices=0 is out of range"):
        train(tmp_path / "run", *COMMON, "trainer.devices=0")


@pytest.mark.slow
def test_torchrun_launches_the_same_training(tmp_path):
    """`torchrun --nproc_per_node=2 -m dlrun ...`: one run directory, the same losses."""
    one = train(tmp_path / "one", *COMMON)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "dlrun",
            *COMMON,
            "trainer.progress=off",
            "trainer.devices=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1  # rank 1 composed its config too, but wrote no run directory
    assert_same_training(rows(one), rows(runs[0]))


def test_two_processes_report_the_seq2seq_exact_match_of_one(tmp_path):
    """One evaluate for every world: under DDP the ranks decode their rows and add up the
    exact matches, so a sequence-to-sequence run reports what one process reports."""
    seq2seq = ["diagnose=off", "trainer.device=cpu", "trainer.epochs=3", "trainer.batch_size=16",
               "data=reverse", "data.length=3", "data.symbols=5", "data.n=400", "model=seq2seq",
               "model.hidden_size=32", "optim.lr=0.02"]
    one = rows(train(tmp_path / "one", *seq2seq))
    two = rows(train(tmp_path / "two", *seq2seq, "trainer.devices=2"))
    exact = [f"{split}_exact" for split in ("train", "val", "test")]
    assert all(key in row for row in two for key in exact)
    for a, b in zip(one, two, strict=True):
        for key in (*exact, "train_loss", "val_loss", "val_acc"):
            assert math.isclose(a[key], b[key], rel_tol=1e-5, abs_tol=1e-7), (key, a[key], b[key])
    assert two[-1]["train_exact"] > 0.1 and two[-1]["val_exact"] > 0.1  # 0.52 and 0.32
