"""Run-directory files: an append-only metrics log and atomically replaced JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _clean(value):
    """JSON has no NaN/inf: write them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: dict) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(_clean(data), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_metrics(path: Path) -> list[dict]:
    """Rows of metrics.jsonl; a torn last line (a killed writer) is skipped."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def best_row(rows: list[dict]) -> dict:
    """The epoch with the lowest validation loss among those whose losses were finite (a
    non-finite loss is flagged in memory and written as null), or {} when there is none."""
    finite = [r for r in rows if not r.get("non_finite") and r.get("val_loss") is not None]
    return min(finite, key=lambda r: r["val_loss"], default={})


class MetricsLog:
    """metrics.jsonl: one JSON object per epoch, flushed as soon as it is written."""

    def __init__(self, path: Path, keep_through_epoch: int = 0):
        self.path = path
        kept = [row for row in read_metrics(path) if row["epoch"] <= keep_through_epoch]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
        os.replace(tmp, path)
        self.rows = kept
        self._handle = open(path, "a")

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._handle.write(json.dumps(_clean(row)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
