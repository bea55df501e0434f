"""What the diagnosis measured, as typed records: diagnosis.json's `evidence`.

Each probe fills one field of `Evidence`; the map's questions read them. A field that no
probe filled is not written; `keep_none` fields are written as null once their probe
ran and found nothing (e.g. a model without ReLUs has no dead-ReLU count).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields

from dlrun.records.rows import clean


def keep_none(default=None):
    """A field written as null when None (other None fields are left out of the JSON)."""
    return field(default=default, metadata={"keep_none": True})


def to_json(record) -> dict:
    """A record's fields as JSON, nested records too; None fields only where `keep_none`."""
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None and not f.metadata.get("keep_none"):
            continue
        out[f.name] = dump(value)
    return clean(out)


def dump(value):
    """Any value as JSON: records (at any depth) become their JSON objects."""
    if dataclasses.is_dataclass(value):
        return to_json(value)
    if isinstance(value, dict):
        return clean({k: dump(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return clean(value)


def from_json(cls, data: dict):
    """The record of type `cls` from its JSON (unknown keys are ignored: other versions)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _load(hints[f.name], data[f.name])
    return cls(**kwargs)


def _load(hint, value):
    if value is None:
        return None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = inner[0] if len(inner) == 1 else None
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return [_load(item, v) for v in value]
    return value


@dataclass
class SplitLosses:
    train: float | None = None
    val: float | None = None
    test: float | None = None

    def __getitem__(self, split: str) -> float | None:
        return getattr(self, split)


@dataclass
class History:
    """What the run's own epochs say (dlrun.diagnose.history)."""

    epochs: int = 0
    nonfinite_epoch: int | None = keep_none()  # written once there are epochs
    finite_epochs: int | None = None
    first_train_loss: float | None = None
    final_train_loss: float | None = None
    min_val_epoch: int | None = None
    min_val_loss: float | None = None
    final_val_loss: float | None = None
    early_stopping_saves: float | None = None  # final val loss - its minimum
    epochs_after_min_val: int | None = None
    # the trend, read over the last `window` epochs; null when too few epochs to judge one
    window: int | None = keep_none()
    fall_rate: float | None = keep_none()  # mean relative fall of the training loss per epoch
    rise_fraction: float | None = keep_none()  # share of the later epochs whose loss rose
    still_falling: bool | None = keep_none()
    oscillating: bool | None = keep_none()
    stalled: bool | None = keep_none()
    grad_norm_median: float | None = None
    grad_norm_peak: float | None = None
    grad_spike: bool | None = None


@dataclass
class OptimizerInfo:
    name: str
    sgd: bool  # plain SGD (with momentum or not): its step size is lr / (1 - momentum)
    lr: float  # the learning rate of the last epoch (after any schedule)
    momentum: float | None = 0.0
    configured_lr: float | None = None  # optim.lr, where it differs from `lr`


@dataclass
class Reference:
    """A reference model fit to the training split, and its loss on every split."""

    name: str
    params: int
    iterations: int | None = None
    train_loss: float | None = keep_none()
    val_loss: float | None = keep_none()
    test_loss: float | None = keep_none()
    seconds: float | None = None
    # the run's architecture can express this reference (so its loss bounds what the
    # architecture can reach); None: not judged
    expressible: bool | None = None


@dataclass
class TinySubset:
    """The user's model, fresh, memorizing a few training examples with its own optimizer."""

    n: int
    targets: int  # labels (or regression outputs) it must memorize
    params: int
    steps: int = 0
    cut_short: bool | None = None  # stopped by the probe budget
    loss: float | None = keep_none()
    trivial: float | None = keep_none()


@dataclass
class CriticalPoint:
    """Gradient and extreme Hessian eigenvalues at the final weights (dlrun.diagnose.hessian)."""

    loss: float
    grad_norm: float
    lambda_max: float
    lambda_min: float
    descent_gain: float  # |g|^2 / (2 |lambda|max): what the best step along g can gain
    curvature_along_gradient: float | None = keep_none()
    hvp_products: int = 0
    hvp_method: str | None = None  # double_backward, or finite_difference where a layer has none
    cut_short: bool | None = None  # Lanczos stopped by the probe budget


@dataclass
class LayerGradients:
    first_layer: str
    last_layer: str
    first: float  # RMS gradient per weight of the first weight matrix
    last: float
    ratio: float | None = keep_none()


@dataclass
class DeadRelu:
    units: int
    dead: int
    fraction: float


@dataclass
class InputScale:
    spread: float
    std_min: float
    std_max: float
    max_abs_mean: float


@dataclass
class OwnOptimum:
    """A fresh copy of the run's own architecture fit hard (full-batch L-BFGS, or Adam where
    L-BFGS does not work) on the training data: an estimate of what this model family can
    reach, whatever the run's optimizer did."""

    train_loss: float | None  # on the whole training split
    fit_loss: float | None  # on the examples it was fit to
    examples: int
    method: str
    iterations: int
    cut_short: bool = False
    seconds: float | None = None
    convex: bool = False  # one affine map: the fit's loss is convex, its end is the optimum


@dataclass
class TimeGradients:
    """Recurrent and sequence models: how much gradient reaches the early steps of the input
    against the late ones (backpropagation through time)."""

    steps: int
    early: float  # mean gradient norm per input step over the first quarter of the steps
    late: float  # ... over the last quarter
    ratio: float | None = keep_none()


@dataclass
class ProbeFailure:
    probe: str
    error: str  # the exception's one-line message


@dataclass
class Escape:
    loss_before: float
    loss_after: float
    step: float


@dataclass
class Evidence:
    params: int
    history: History
    test_shift: str | None = keep_none()
    lr: float | None = None
    optimizer: OptimizerInfo | None = None
    loss: SplitLosses | None = None  # the final (or restored) epoch's losses
    exact: SplitLosses | None = None  # seq2seq: share of whole targets decoded right
    trivial: SplitLosses | None = None  # the best constant predictor's losses
    references: list[Reference] | None = None
    gradients: LayerGradients | None = keep_none()
    dead_relu: DeadRelu | None = keep_none()
    inputs: InputScale | None = keep_none()
    tiny: TinySubset | None = None
    critical_point: CriticalPoint | None = None
    escape: Escape | None = None
    own_optimum: OwnOptimum | None = None
    initial_curvature: float | None = None  # lambda_max at a fresh start (a diverged SGD run)
    loss_se: SplitLosses | None = None  # standard error of each split's mean loss
    time_gradients: TimeGradients | None = None
    can_output_constant: bool | None = None  # the last layer has a bias
    failed: list[ProbeFailure] | None = None  # probes that raised: the map did without them
    cut_short: list[str] | None = None  # probes stopped by diagnose.probe_budget

    def to_json(self) -> dict:
        data = to_json(self)
        if self.trivial is None:  # the probes never ran (no epochs, a non-finite loss)
            for name in ("gradients", "dead_relu", "inputs"):
                data.pop(name, None)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Evidence:
        return from_json(cls, {"history": {}, **data})
