"""Interrupted runs never lose work: signals save and say how to resume; SIGKILL never corrupts."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import train

from dlrun.records import read_rows

OVERRIDES = ["data.n_train=300", "model.hidden=[32]", "model.dropout=0.1", "trainer.progress=lines"]


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlrun", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def only_run_dir(cwd: Path) -> Path:
    runs = list(cwd.glob("outputs/runs/*/*"))
    return runs[0] if len(runs) == 1 else None


def metric_rows(run_dir: Path) -> list[str]:
    return [json.dumps(row.to_json(), sort_keys=True) for row in read_rows(run_dir / "metrics.jsonl")]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_the_run_and_says_how_to_resume(tmp_path, sig, code):
    process = start(tmp_path, *OVERRIDES, "trainer.epochs=100000")
    wait_for(lambda: only_run_dir(tmp_path) and len(read_rows(only_run_dir(tmp_path) / "metrics.jsonl")) >= 2)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    run_dir = only_run_dir(tmp_path)
    assert f"dlrun trainer.resume={run_dir.resolve()}" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    import torch

    last = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert last["epoch"] == read_rows(run_dir / "metrics.jsonl")[-1].epoch


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    epochs = 600  # long enough that three kills always land before the end
    reference = train(tmp_path / "reference", *OVERRIDES, f"trainer.epochs={epochs}")
    rng = random.Random(0)
    cwd = tmp_path / "killed"
    cwd.mkdir()
    process = start(cwd, *OVERRIDES, f"trainer.epochs={epochs}")
    done = 0
    for _ in range(3):
        # let the run make progress past where it was, then kill it at a random moment
        wait_for(lambda done=done: only_run_dir(cwd) and len(read_rows(only_run_dir(cwd) / "metrics.jsonl")) > done)
        time.sleep(rng.uniform(0.0, 0.1))
        process.kill()
        assert process.wait() == -signal.SIGKILL
        run_dir = only_run_dir(cwd)
        rows = read_rows(run_dir / "metrics.jsonl")  # readable, whatever the moment
        assert [row.epoch for row in rows] == list(range(1, len(rows) + 1))
        assert len(rows) < epochs, "the run finished before it was killed"
        done = len(rows)
        process = start(cwd, f"trainer.resume={run_dir}")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert metric_rows(run_dir) == metric_rows(reference)
