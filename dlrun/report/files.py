"""Run-directory files: an append-only metrics log and atomically replaced JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dlrun.records import EpochRow, read_rows
from dlrun.records.rows import clean


def write_json(path: Path, data: dict) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(clean(data), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class MetricsLog:
    """metrics.jsonl: one JSON object per epoch, flushed as soon as it is written; `rows` holds
    every epoch of the run (a resumed run's earlier ones too)."""

    def __init__(self, path: Path, keep_through_epoch: int = 0):
        self.path = path
        kept = [row for row in read_rows(path) if row.epoch <= keep_through_epoch]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(row.to_json()) + "\n" for row in kept))
        os.replace(tmp, path)
        self.rows: list[EpochRow] = kept
        self._handle = open(path, "a")

    def append(self, row: EpochRow) -> None:
        self.rows.append(row)
        self._handle.write(json.dumps(row.to_json()) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
