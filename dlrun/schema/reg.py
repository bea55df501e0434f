"""Schemas of the `reg` group; each option lives under its own key (`reg.l2.strength`).

Several options combine: `reg=[l2,early_stopping,augment]`. The penalties (l1, l2,
elastic) add up into one term of the training objective; dropout is read by the model's
config; early stopping and augmentation are components built from their `_target_`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import FRACTION, NON_NEGATIVE, at_least, between, knob


@dataclass
class L1Config:
    strength: float = knob(
        1e-4, "adds strength * sum|w| over weight matrices and kernels to the loss", NON_NEGATIVE)


@dataclass
class L2Config:
    strength: float = knob(
        1e-4, "adds strength * sum(w^2) over weight matrices and kernels to the loss", NON_NEGATIVE)


@dataclass
class ElasticConfig:
    strength: float = knob(
        1e-4, "adds strength * (l1_ratio * sum|w| + (1 - l1_ratio) * sum(w^2)) to the loss",
        NON_NEGATIVE)
    l1_ratio: float = knob(0.5, "1: reg=l1; 0: reg=l2", between(0, 1))


@dataclass
class DropoutConfig:
    p: float = knob(0.5, "the model's dropout probability (model.dropout follows it)", FRACTION)


@dataclass
class EarlyStoppingConfig:
    _target_: str = "dlrun.train.early_stopping.EarlyStopping"
    patience: int = knob(10, "stop after this many epochs without a better validation loss",
                         at_least(1))
    min_delta: float = knob(0.0, "better means lower by more than this", NON_NEGATIVE)
    restore_best: bool = knob(True, "end with the weights of the best epoch")


@dataclass
class AugmentConfig:
    _target_: str = "dlrun.train.augment.BatchAugment"
    # images (N, C, H, W): one random affine warp per image (affine_grid + grid_sample)
    crop_pad: int = knob(
        1, "random crop after zero padding: shift by up to this many pixels", at_least(0, " pixels"))
    hflip: bool = knob(False, "random horizontal flip: true for natural images, not for digits")
    rotate: float = knob(10.0, "rotate by up to this many degrees either way", between(0, 180))
    scale: float = knob(0.1, "zoom by a factor in [1 - scale, 1 + scale]", FRACTION)
    # vectors (N, F) and sequences (N, T, F) of real values (token ids are left alone)
    noise: float = knob(0.1, "std of Gaussian noise added to the standardized inputs", NON_NEGATIVE)
    shift: int = knob(
        0, "roll each sequence / 1-D signal by up to this many steps (labels per step roll "
        "along); for shift-invariant signals like mnist1d, not tabular data", at_least(0, " steps"))


SCHEMAS = {
    "_schema_reg_l1": L1Config,
    "_schema_reg_l2": L2Config,
    "_schema_reg_elastic": ElasticConfig,
    "_schema_reg_dropout": DropoutConfig,
    "_schema_reg_early_stopping": EarlyStoppingConfig,
    "_schema_reg_augment": AugmentConfig,
}
