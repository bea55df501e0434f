"""Schemas of the `optim` group: torch.optim classes built with `_partial_`.

The runner binds the parameters and picks torch's fused or foreach implementation for
the device (dlrun.train.optimizers), so no knob here names one. Each option's class only
changes defaults; the knobs' ranges and meanings are stated once, on the first class
that has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import MISSING

from dlrun.schema.knobs import FRACTION, NON_NEGATIVE, POSITIVE, Rule, between, knob

LR = Rule(lambda v: v > 0 and math.isfinite(v), "must be a positive number, e.g. optim.lr=0.01")
BETAS = Rule(lambda v: len(v) == 2 and all(0 <= b < 1 for b in v),
             "must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]")


def _eps(default: float):
    return knob(default, "added to the denominator for numerical stability", POSITIVE)


def _momentum(default: float):
    return knob(default, "v = momentum * v + g; w -= lr * v (a step about 1 / (1 - momentum) "
                "times plain SGD's)", FRACTION)


def _betas():
    return knob([0.9, 0.999], "decay of the gradient average (momentum) and of the "
                "squared-gradient average", BETAS)


@dataclass
class OptimConfig:
    _target_: str = MISSING
    _partial_: bool = True
    lr: float = knob(MISSING, "the learning rate", LR, common=True)
    weight_decay: float = knob(
        0.0, "adds weight_decay * w to the gradient, biases included (decoupled from the "
        "adaptive step in AdamW); see reg=l2", NON_NEGATIVE, common=True)


@dataclass
class SGDConfig(OptimConfig):
    _target_: str = "torch.optim.SGD"
    lr: float = 0.1
    momentum: float = _momentum(0.0)
    dampening: float = knob(0.0, "the share of each gradient left out of the momentum",
                            between(0, 1))
    nesterov: bool = knob(False, "take the gradient after the look-ahead step")


@dataclass
class MomentumConfig(SGDConfig):
    lr: float = 0.01
    momentum: float = 0.9


@dataclass
class NesterovConfig(MomentumConfig):
    nesterov: bool = True


@dataclass
class AdagradConfig(OptimConfig):
    _target_: str = "torch.optim.Adagrad"
    lr: float = 0.01
    lr_decay: float = knob(0.0, "the LR is divided by 1 + (step - 1) * lr_decay", NON_NEGATIVE)
    initial_accumulator_value: float = knob(0.0, "the starting sum of squared gradients")
    eps: float = _eps(1e-10)


@dataclass
class RMSpropConfig(OptimConfig):
    _target_: str = "torch.optim.RMSprop"
    lr: float = 1e-3
    alpha: float = knob(0.99, "decay of the squared-gradient average (the notes' alpha)", FRACTION)
    eps: float = _eps(1e-8)
    momentum: float = _momentum(0.0)
    centered: bool = knob(False, "divide by the estimated variance of the gradient instead")


@dataclass
class AdamConfig(OptimConfig):
    _target_: str = "torch.optim.Adam"
    lr: float = 1e-3
    betas: list[float] = _betas()
    eps: float = _eps(1e-8)
    amsgrad: bool = knob(False, "divide by the largest squared-gradient average so far")


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class NAdamConfig(OptimConfig):
    _target_: str = "torch.optim.NAdam"
    lr: float = 2e-3
    betas: list[float] = _betas()
    eps: float = _eps(1e-8)
    momentum_decay: float = knob(4e-3, "how fast the Nesterov momentum warms up", NON_NEGATIVE)


@dataclass
class AdadeltaConfig(OptimConfig):
    _target_: str = "torch.optim.Adadelta"
    lr: float = 1.0
    rho: float = knob(0.9, "decay of the squared-gradient and squared-update averages", FRACTION)
    eps: float = _eps(1e-6)


SCHEMAS = {
    "_schema_optim_gd": SGDConfig,
    "_schema_optim_sgd": SGDConfig,
    "_schema_optim_momentum": MomentumConfig,
    "_schema_optim_nesterov": NesterovConfig,
    "_schema_optim_adagrad": AdagradConfig,
    "_schema_optim_rmsprop": RMSpropConfig,
    "_schema_optim_adam": AdamConfig,
    "_schema_optim_adamw": AdamWConfig,
    "_schema_optim_nadam": NAdamConfig,
    "_schema_optim_adadelta": AdadeltaConfig,
}
