"""summary.json: how a run ended, its final and best epochs, its size, speed and provenance.

The runner builds one `Summary` in memory and writes it (before the diagnosis, and again
after it); cross-validation and failed sweep jobs write the same record with fewer fields.
Fields left at None are not written, so each kind of run keeps exactly its keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from dlrun.records.rows import EpochRow, clean

ALWAYS = ("status", "run_dir", "final", "best")  # written even when empty


@dataclass
class Summary:
    status: str = "ok"  # ok | failed | interrupted | pruned (by a search's pruner)
    run_dir: str = ""
    final: EpochRow | None = None  # the last epoch ({} on disk when there is none)
    best: EpochRow | None = None  # the epoch with the lowest finite val loss
    epochs: int | None = None
    steps: int | None = None
    params: int | None = None
    device: str | None = None
    wall_time_s: float | None = None
    train_time_s: float | None = None
    steps_per_s: float | None = None
    eval_share: float | None = None  # share of the epochs' time spent evaluating
    environment: dict | None = None  # dlrun, torch, CUDA, Python, device name, command, commit
    params_per_layer: list[dict] | None = None
    world_size: int | None = None
    threads: int | None = None
    host_peak_mb: float | None = None
    device_peak_mb: float | None = None
    samples: dict[str, str] | None = None  # token models: generated text / decoded examples
    mode: str | None = None  # "cv" for a cross-validation's own summary
    cv: dict | None = None
    objective: float | None = None  # what the job returned to the sweeper (val loss kept)
    early_stopping: dict | None = None
    stack: dict | None = None  # a stacked sweep's job: the stack's jobs, size and model steps/s
    verdict: str | None = None
    error: str | None = None  # one line, when status is failed (or pruned: why)
    traceback: str | None = None  # a crash inside a sweep job
    extra: dict = field(default_factory=dict)  # keys another tool added: kept on a round trip

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, EpochRow):
                value = value.to_json()
            elif value is None and f.name in ("final", "best"):
                value = {}
            if value is not None or f.name in ALWAYS:
                out[f.name] = value
        out.update(self.extra)
        return clean(out)

    @classmethod
    def from_json(cls, data: dict) -> Summary:
        known = {f.name for f in fields(cls)} - {"extra"}
        summary = cls(**{k: v for k, v in data.items() if k in known})
        summary.extra = {k: v for k, v in data.items() if k not in known}
        for name in ("final", "best"):
            value = getattr(summary, name)
            setattr(summary, name, EpochRow.from_json(value) if value else None)
        return summary


def read_summary(run_dir: Path) -> Summary | None:
    """The run's summary.json, or None when it is missing or unreadable (a killed run)."""
    try:
        data = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return Summary.from_json(data) if isinstance(data, dict) else None
