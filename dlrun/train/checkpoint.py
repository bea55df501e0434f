"""Checkpoints that are always whole: written to a temporary file, fsynced, then renamed."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dlrun.errors import UserError


def save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """Load with `weights_only=True`: tensors and plain values, never arbitrary pickles."""
    if not path.is_file():
        raise UserError(
            f"trainer.resume: {path.parent.parent} holds no checkpoint ({path} is missing); "
            "resume from a run that trained at least one epoch, or drop trainer.resume."
        )
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated, corrupt, or not a checkpoint at all
        raise UserError(
            f"trainer.resume: {path} is not a readable checkpoint ({type(error).__name__}); "
            "resume from another run, or start a fresh one without trainer.resume."
        ) from None


def rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["batches"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
