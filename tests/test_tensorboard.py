"""A real TensorBoard server over a run directory serves the run's loss curves per split."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import train


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def tensorboard(tmp_path):
    """Start `tensorboard` on 127.0.0.1 over tmp_path/logs; yields its base URL."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}", logdir
    server.terminate()
    server.wait(timeout=20)


def _wait_for_runs(base: str, expected: int, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            tags = _get(f"{base}/data/plugin/scalars/tags")
            if len([r for r in tags if "loss" in tags[r]]) >= expected:
                return tags
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError("TensorBoard never served the run's scalars")


def test_tensorboard_serves_train_val_test_loss(tensorboard):
    base, logdir = tensorboard
    run_dir = train(logdir / "run", "trainer.epochs=3")
    tags = _wait_for_runs(base, expected=3)
    split_runs = {run.rsplit("/", 1)[-1]: run for run in tags if "loss" in tags[run]}
    assert set(split_runs) == {"train", "val", "test"}
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for split, run in split_runs.items():
        query = urllib.parse.urlencode({"run": run, "tag": "loss"})
        deadline = time.time() + 60
        while True:  # the server may have read the events file before its last epoch landed
            points = _get(f"{base}/data/plugin/scalars/scalars?{query}")
            if len(points) >= 3 or time.time() > deadline:
                break
            time.sleep(1)
        assert [p[1] for p in points] == [1, 2, 3]  # (wall time, step, value)
        expected = [row[f"{split}_loss"] for row in metrics]
        assert [p[2] for p in points] == pytest.approx(expected, rel=1e-5)
