"""The key structure of a run directory's files, numbers aside: what tools and users rely on.

`shape(obj)` keeps every key and replaces each value by its kind, so two runs of the same
command compare equal whatever their numbers. Shared by tests/test_records.py and the
script that stored the examples (`python tests/run_shapes.py`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent / "data" / "run_files"
# the README's example runs, shortened; each stores the shapes of its three files
RUNS = {
    "default": [],
    "optimization": ["experiment=optimization"],
    "regression": ["model=linear", "data=sine"],
    "early_stopping": ["reg=early_stopping", "reg.early_stopping.patience=1", "trainer.epochs=4"],
    "reverse": ["data=reverse", "data.length=4", "data.n=200", "model=seq2seq",
                "model.hidden_size=16"],
    "mismatch": ["experiment=mismatch"],
}
# every probe finishes whatever the machine's load, so which evidence keys exist does not
# depend on timing (a probe cut short by its budget leaves its key out)
UNCUT = ["diagnose.probe_budget=1000"]
# values that differ from run to run in kind, not only in number
VOLATILE = {"git_commit", "device_peak_mb", "traceback", "cuda"}


def shape(obj, key: str = ""):
    if key in VOLATILE:
        return "any"
    if isinstance(obj, dict):
        return {k: shape(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shape(obj[0])] if obj else []
    if isinstance(obj, bool):
        return "bool"
    if isinstance(obj, (int, float)):
        return "number"
    if obj is None:
        return "null"
    return "string"


def merged(shapes: list) -> dict:
    """The union of several rows' shapes: a key present in any row (metrics.jsonl)."""
    out: dict = {}
    for s in shapes:
        out.update(s)
    return out


def run_shapes(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "metrics.jsonl": merged([shape(r) for r in rows]),
        "summary.json": shape(json.loads((run_dir / "summary.json").read_text())),
        "diagnosis.json": shape(json.loads((run_dir / "diagnosis.json").read_text())),
    }


if __name__ == "__main__":  # store the examples from the current code
    import tempfile

    import torch

    torch.set_num_threads(1)  # as the test runs them
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import train

    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, overrides in RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            shapes = run_shapes(train(Path(tmp) / "run", *overrides, *UNCUT))
        (EXAMPLES / f"{name}.json").write_text(json.dumps(shapes, indent=1) + "\n")
        print(name)
