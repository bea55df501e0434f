"""Schemas of the `sched` group: torch.optim.lr_scheduler classes built with `_partial_`.

`interval` (epoch | step) says how often the loop steps the schedule; the runner pops it
before instantiating. A `total_steps` or `T_max` of null is filled in at build time with
the number of times the schedule will be stepped: trainer.epochs, or trainer.epochs x
steps per epoch for interval=step.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from dlrun.schema.knobs import (
    NON_NEGATIVE,
    OPEN_FRACTION,
    POSITIVE,
    at_least,
    between,
    knob,
    one_of,
)

UNIT_FACTOR = between(0, 1, low_open=True)  # (0, 1]: a multiple of the LR


def _gamma(default: float, meaning: str):
    return knob(default, meaning, POSITIVE)


def _eta_min():
    return knob(0.0, "the LR the cosine ends at", NON_NEGATIVE)


def _total_steps():
    return knob(None, "null: trainer.epochs x steps per epoch, computed from the data at build time",
                at_least(1, ", or null for the whole run"))


@dataclass
class SchedConfig:
    _target_: str = MISSING
    _partial_: bool = True
    interval: str = knob("epoch", "step the schedule once per epoch, or once per optimizer step",
                         one_of("epoch", "step", text="must be epoch or step"))


@dataclass
class ConstantConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ConstantLR"
    factor: float = knob(1.0, "the LR is optim.lr x factor for the first total_iters epochs",
                         UNIT_FACTOR)
    total_iters: int = knob(0, "epochs at the lowered LR (0: the LR stays at optim.lr)")


@dataclass
class StepConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.StepLR"
    step_size: int = knob(10, "multiply the LR by gamma every step_size epochs", at_least(1))
    gamma: float = _gamma(0.1, "the factor of each step")


@dataclass
class ExponentialConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ExponentialLR"
    gamma: float = _gamma(0.9, "multiply the LR by gamma every epoch")


@dataclass
class CosineConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    T_max: int | None = knob(
        None, "null: the whole run (trainer.epochs, or all steps with interval=step)",
        at_least(1, ", or null for the whole run"))
    eta_min: float = _eta_min()


@dataclass
class WarmupCosineConfig(SchedConfig):
    _target_: str = "dlrun.train.schedules.warmup_cosine"
    interval: str = "step"
    warmup: float = knob(
        0.05, "< 1: a fraction of the run's steps; >= 1: a number of steps (warmup=200)",
        at_least(0, ": a fraction of the steps (< 1) or a number of steps"))
    start_factor: float = knob(0.01, "the warm-up starts at start_factor * optim.lr", UNIT_FACTOR)
    eta_min: float = _eta_min()
    total_steps: int | None = _total_steps()


@dataclass
class PlateauConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.ReduceLROnPlateau"
    mode: str = knob("min", "min: the validation loss should fall")
    factor: float = knob(0.1, "multiply the LR by this ...", UNIT_FACTOR)
    patience: int = knob(5, "... after this many epochs without a better validation loss",
                         NON_NEGATIVE)
    threshold: float = knob(1e-4, "an improvement is a relative drop of more than this")
    threshold_mode: str = knob("rel", "rel: threshold is relative; abs: absolute")
    cooldown: int = knob(0, "epochs to wait after a reduction before counting again")
    min_lr: float = knob(0.0, "the LR never falls below this")


@dataclass
class OneCycleConfig(SchedConfig):
    _target_: str = "torch.optim.lr_scheduler.OneCycleLR"
    interval: str = "step"
    max_lr: float = knob("${optim.lr}", "the peak LR (optim.lr)")
    total_steps: int | None = _total_steps()
    pct_start: float = knob(0.3, "the share of the run spent warming up", OPEN_FRACTION)
    anneal_strategy: str = knob("cos", "cos | linear")
    div_factor: float = knob(25.0, "starts at max_lr / div_factor", POSITIVE)
    final_div_factor: float = knob(1e4, "ends at max_lr / div_factor / final_div_factor", POSITIVE)
    three_phase: bool = knob(False, "true: a third phase annihilates the LR (torch's option)")
    cycle_momentum: bool = knob(
        False, "true also cycles momentum / Adam's beta1 inversely to the LR")


SCHEMAS = {
    "_schema_sched_constant": ConstantConfig,
    "_schema_sched_step": StepConfig,
    "_schema_sched_exponential": ExponentialConfig,
    "_schema_sched_cosine": CosineConfig,
    "_schema_sched_warmup_cosine": WarmupCosineConfig,
    "_schema_sched_plateau": PlateauConfig,
    "_schema_sched_onecycle": OneCycleConfig,
}
