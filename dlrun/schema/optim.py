"""Schemas of the `optim` group: torch.optim classes built with `_partial_`.

The runner binds the parameters and picks torch's fused or foreach implementation for
the device (dlrun.train.optimizers), so no knob here names one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING


@dataclass
class OptimConfig:
    _target_: str = MISSING
    _partial_: bool = True
    lr: float = MISSING
    weight_decay: float = 0.0  # decay added to the gradient (decoupled from it in AdamW)


@dataclass
class SGDConfig(OptimConfig):
    _target_: str = "torch.optim.SGD"
    lr: float = 0.1
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False


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
    lr_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10


@dataclass
class RMSpropConfig(OptimConfig):
    _target_: str = "torch.optim.RMSprop"
    lr: float = 1e-3
    alpha: float = 0.99  # decay of the running average of squared gradients
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@dataclass
class AdamConfig(OptimConfig):
    _target_: str = "torch.optim.Adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class NAdamConfig(OptimConfig):
    _target_: str = "torch.optim.NAdam"
    lr: float = 2e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum_decay: float = 4e-3


@dataclass
class AdadeltaConfig(OptimConfig):
    _target_: str = "torch.optim.Adadelta"
    lr: float = 1.0
    rho: float = 0.9
    eps: float = 1e-6


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
