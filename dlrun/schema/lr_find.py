"""Schema of the `lr_find` group: the learning-rate range test run by `mode=lr_find`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LRFindConfig:
    start_lr: float = 1e-7
    end_lr: float = 10.0
    steps: int = 200  # LRs spaced evenly in log scale from start_lr to end_lr
    smoothing: float = 0.98  # EMA factor of the loss used to detect divergence
    diverge: float = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum


SCHEMAS = {
    "_schema_lr_find": LRFindConfig,
}
