"""Build the configured model for a dataset, check it fits the data, and count its parameters.

Every model takes `input_shape` and `out_features` from the data. Facts some models
need are passed only to the models whose signature asks for them, so no code here
names a model: `per_step` (a label per sequence step), `vocab_size` (inputs are token
ids), `source_length` (seq2seq: the leading source steps) and `causal=True` when the
data is next-token prediction, where a model that looks ahead would read the answer.
"""

from __future__ import annotations

import importlib
import inspect
import re
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from dlrun.errors import UserError

SEQUENCE_MODELS = "model=gru, lstm, rnn or transformer"
TOKEN_MODELS = "model=seq2seq, gru, lstm, rnn or transformer"


@contextmanager
def user_errors_unwrapped():
    """Hydra wraps what a `_target_` raises; let a UserError through as itself."""
    try:
        yield
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def model_name(model_cfg) -> str:
    """The name a user types for this model (`model=...`)."""
    if HydraConfig.initialized():
        return HydraConfig.get().runtime.choices.get("model", "?")
    name = model_cfg._target_.rsplit(".", 1)[-1].lower()
    return model_cfg.get("cell", name) if name == "recurrent" else name


def model_class(target: str) -> type:
    """The class `model._target_` names. (Hydra's get_class would log its failure before
    raising, a second message beside dlrun's one line.)"""
    module, _, name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as error:
        raise UserError(f"model._target_={target} cannot be imported ({error}); check its "
                        "spelling, or put its module on PYTHONPATH.") from None
    if not isinstance(found, type):
        raise UserError(f"model._target_={target} names no class; give a module path and a "
                        "class name, e.g. model._target_=mymodels.MyNet.")
    return found


def build_model(model_cfg, data) -> nn.Module:
    """Instantiate `model_cfg` for `data` and run two examples through it to check the output shape."""
    name = model_name(model_cfg)
    causal = getattr(data, "causal", False)
    offered = {
        "per_step": data.per_step,
        "vocab_size": getattr(data, "vocab_size", None),
        "source_length": getattr(data, "source_length", None),
        **({"causal": True} if causal else {}),
    }
    accepted = inspect.signature(model_class(model_cfg._target_)).parameters
    if offered["vocab_size"] is not None and "vocab_size" not in accepted:
        raise UserError(
            f"model={name} reads feature vectors but data={data.name} gives token ids; use "
            f"{TOKEN_MODELS if offered['source_length'] else SEQUENCE_MODELS}."
        )
    extra = {key: value for key, value in offered.items() if key in accepted}
    with user_errors_unwrapped():
        model = instantiate(
            model_cfg, input_shape=data.input_shape, out_features=data.out_features, **extra
        )
    if causal and not getattr(model, "causal", False):
        raise UserError(
            f"data={data.name} is next-token prediction, so a model may not look ahead, but "
            f"model={name} reads the sequence in both directions; use model.bidirectional=false."
        )
    _check_output(model, data, name)
    return model


def _check_output(model: nn.Module, data, name: str) -> None:
    steps = (data.y_train.shape[1],) if data.per_step else ()
    expected = (*steps, data.out_features)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        got = tuple(model(data.x_train[:2].cpu()).shape[1:])  # the model is still on the CPU
    model.train(was_training)
    if got == expected:
        return
    if data.per_step:
        raise UserError(
            f"model={name} gives one output per example but data={data.name} has a label per "
            f"step (targets of shape {tuple(data.y_train.shape[1:])}); use {SEQUENCE_MODELS}."
        )
    raise UserError(
        f"model={name} gives outputs of shape {got} but data={data.name} needs {expected}; "
        "use model=mlp."
    )


def param_counts(model: nn.Module) -> list[dict]:
    """Parameters per top-level layer (layers without parameters left out), in model order."""
    rows = [
        {"layer": name, "type": "Parameter", "params": p.numel(), "detail": str(tuple(p.shape))}
        for name, p in model.named_parameters(recurse=False)
    ]
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        if count:
            rows.append(
                {
                    "layer": name,
                    "type": type(child).__name__,
                    "params": count,
                    "detail": _compact(child.extra_repr()),
                }
            )
    return rows


def _compact(detail: str, width: int = 36) -> str:
    """A layer's torch description, shortened for a one-line table cell: `in=64, out=128`."""
    detail = re.sub(r"\b(in|out)_features=", r"\1=", detail)
    detail = re.sub(r", (bias|batch_first|affine|track_running_stats)=True", "", detail)
    detail = detail.replace(", eps=1e-05, momentum=0.1", "")
    return detail if len(detail) <= width else detail[: width - 3] + "..."
