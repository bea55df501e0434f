"""One example through a model, to measure it (its activations' size, its FLOPs) without
training it: shared by the evaluation chunk size and the thread rule."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def forward_one_row(model: nn.Module, example: torch.Tensor, hooks: list, within=None) -> None:
    """One example (1, ...) through `model` in eval and inference mode, with forward hooks
    (module, fn) and inside the context manager `within` (e.g. a FLOP counter); the model's
    mode and hooks are left as they were."""
    handles = [module.register_forward_hook(fn) for module, fn in hooks]
    was_training = model.training
    try:
        with torch.inference_mode(), within or contextlib.nullcontext():
            model.eval()
            model(example[:1])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
