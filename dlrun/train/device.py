"""Pick the device a run asked for, or the best one there is."""

from __future__ import annotations

import torch

from dlrun.errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("trainer.device=mps but this machine has no MPS device; use trainer.device=auto or cpu.")
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"trainer.device={name} but no CUDA GPU is available here; use trainer.device=auto or cpu."
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"trainer.device={name} but this machine has {torch.cuda.device_count()} CUDA device(s); "
                f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}."
            )
        return device
    raise UserError(f"trainer.device={name} is unknown; use auto, cpu, cuda, cuda:N or mps.")
