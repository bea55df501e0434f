import json

from conftest import train


def test_default_experiment_writes_run_files(run_dir):
    train(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["final"]["val_acc"] > 0.5
