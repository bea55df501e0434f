"""Schema of the `trainer` group: the loop's own knobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int | None = 64  # null: full-batch gradient descent
    eval_batch_size: int = 8192
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    seed: int = 0
    resume: str | None = None  # a run directory to continue from its last checkpoint
    grad_clip: float | None = None  # clip the global gradient norm to this value
    progress: str = "auto"  # auto | bar | lines | off
    checkpoint: bool = True


SCHEMAS = {
    "_schema_trainer": TrainerConfig,
}
