"""Schemas of the `sched` group: torch.optim.lr_scheduler classes built with `_partial_`.

`interval` (epoch | step) says how often the loop steps the schedule; the runner pops it
before instantiating. A `total_steps` or `T_max` of null is filled in at build time with
the number of times the schedule will be stepped: trainer.epochs, or trainer.epochs x
steps per epoch for interval=step.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class SchedConfig:
    _target_: str = MISSING
    _partial_: bool = True
    interval: str = "epoch"  # epoch | step


@dataclass
class ConstantConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ConstantLR"
    factor: float = 1.0
    total_iters: int = 0


@dataclass
class StepConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.StepLR"
    step_size: int = 10  # multiply the LR by gamma every step_size epochs
    gamma: float = 0.1


@dataclass
class ExponentialConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ExponentialLR"
    gamma: float = 0.9  # multiply the LR by gamma every epoch


@dataclass
class CosineConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    T_max: int | None = None  # null: the whole run
    eta_min: float = 0.0


@dataclass
class WarmupCosineConfig(SchedConfig):
    _target_: str = "dlrun.train.schedules.warmup_cosine"
    interval: str = "step"
    warmup: float = 0.05  # < 1: a fraction of the run's steps; >= 1: a number of steps
    start_factor: float = 0.01  # the warm-up starts at start_factor * optim.lr
    eta_min: float = 0.0
    total_steps: int | None = None  # null: the whole run


@dataclass
class PlateauConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ReduceLROnPlateau"
    mode: str = "min"
    factor: float = 0.1  # multiply the LR by this ...
    patience: int = 5  # ... after this many epochs without a better validation loss
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0


@dataclass
class OneCycleConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.OneCycleLR"
    interval: str = "step"
    max_lr: float = MISSING
    total_steps: int | None = None  # null: the whole run
    pct_start: float = 0.3
    anneal_strategy: str = "cos"  # cos | linear
    div_factor: float = 25.0  # starts at max_lr / div_factor
    final_div_factor: float = 1e4  # ends at max_lr / div_factor / final_div_factor
    three_phase: bool = False
    cycle_momentum: bool = False  # true: also cycle momentum/beta1 (SGD with momentum, Adam)


SCHEMAS = {
    "_schema_sched_constant": ConstantConfig,
    "_schema_sched_step": StepConfig,
    "_schema_sched_exponential": ExponentialConfig,
    "_schema_sched_cosine": CosineConfig,
    "_schema_sched_warmup_cosine": WarmupCosineConfig,
    "_schema_sched_plateau": PlateauConfig,
    "_schema_sched_onecycle": OneCycleConfig,
}
