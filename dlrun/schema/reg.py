"""Schemas of the `reg` group; each option lives under its own key (`reg.l2.strength`).

Several options combine: `reg=[l2,early_stopping,augment]`. The penalties (l1, l2,
elastic) add up into one term of the training objective; dropout is read by the model's
config; early stopping and augmentation are components built from their `_target_`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class L1Config:
    strength: float = 1e-4  # adds strength * sum|w| over weight matrices to the loss


@dataclass
class L2Config:
    strength: float = 1e-4  # adds strength * sum(w^2) over weight matrices to the loss


@dataclass
class ElasticConfig:
    strength: float = 1e-4  # adds strength * (l1_ratio * sum|w| + (1 - l1_ratio) * sum(w^2))
    l1_ratio: float = 0.5


@dataclass
class DropoutConfig:
    p: float = 0.5  # the model's dropout probability


@dataclass
class EarlyStoppingConfig:
    _target_: str = "dlrun.train.early_stopping.EarlyStopping"
    patience: int = 10  # stop after this many epochs without a better validation loss
    min_delta: float = 0.0  # "better" means lower by more than this
    restore_best: bool = True  # end with the weights of the best epoch


@dataclass
class AugmentConfig:
    _target_: str = "dlrun.train.augment.BatchAugment"
    # images (N, C, H, W): one random affine warp per image, a whole batch at a time
    crop_pad: int = 1  # random crop after zero padding: a shift of up to this many pixels
    hflip: bool = False  # random horizontal flip (mirrored digits are not digits)
    rotate: float = 10.0  # random rotation of up to this many degrees either way
    scale: float = 0.1  # random zoom by a factor in [1 - scale, 1 + scale]
    # vectors (N, F) and sequences (N, T, F) of real values
    noise: float = 0.1  # std of Gaussian noise added to the (standardized) inputs
    shift: int = 0  # roll each sequence (or 1-D signal) by up to this many steps


SCHEMAS = {
    "_schema_reg_l1": L1Config,
    "_schema_reg_l2": L2Config,
    "_schema_reg_elastic": ElasticConfig,
    "_schema_reg_dropout": DropoutConfig,
    "_schema_reg_early_stopping": EarlyStoppingConfig,
    "_schema_reg_augment": AugmentConfig,
}
