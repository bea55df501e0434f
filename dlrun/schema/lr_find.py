"""Schema of the `lr_find` group: the learning-rate range test run by `mode=lr_find`."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import FRACTION, POSITIVE, above, at_least, knob


@dataclass
class LRFindConfig:
    start_lr: float = knob(1e-7, "the learning rate of the first step", POSITIVE)
    end_lr: float = knob(10.0, "the learning rate of the last step", POSITIVE)
    steps: int = knob(200, "LRs spaced evenly in log scale from start_lr to end_lr", at_least(10))
    smoothing: float = knob(0.98, "EMA factor of the loss that detects divergence", FRACTION)
    diverge: float = knob(
        4.0, "stop once that smoothed loss exceeds diverge x its minimum", above(1))


SCHEMAS = {
    "_schema_lr_find": LRFindConfig,
}
