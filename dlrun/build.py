"""Everything a run trains with, built from the composed config's `_target_` lines.

The runner never names a model, dataset or optimizer: the YAML does, and this module
hands each component what it needs from the others (the data's shapes to the model,
the run's length to the schedule, the model's outputs to the loss).
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from dlrun.data import Dataset
from dlrun.data.batches import steps_per_epoch
from dlrun.models import build_model, user_errors_unwrapped
from dlrun.train.accel import drops_last, prepare_model
from dlrun.train.components import Components
from dlrun.train.optimizers import build_optimizer
from dlrun.train.regularize import penalty_from_config
from dlrun.train.schedules import build_scheduler


def load_data(cfg: DictConfig, device: torch.device) -> Dataset:
    return instantiate(cfg.data, seed=cfg.trainer.seed).to(device)


def build(cfg: DictConfig, device: torch.device, data: Dataset | None = None):
    """Data (unless given), model, optimizer, scheduler and the scheduler's stepping interval."""
    torch.manual_seed(cfg.trainer.seed)
    data = load_data(cfg, device) if data is None else data
    model = build_model(cfg.model, data).to(device)
    model = prepare_model(model, cfg.trainer, device, image_inputs=len(data.input_shape) == 3)
    optimizer = build_optimizer(instantiate(cfg.optim), model.parameters(), device)
    scheduler, interval = build_scheduler(
        cfg.sched, optimizer, epochs=cfg.trainer.epochs,
        steps_per_epoch=steps_per_epoch(len(data.x_train), cfg.trainer.batch_size,
                                        drops_last(cfg.trainer)),
    )
    return data, model, optimizer, scheduler, interval


def build_loss(cfg: DictConfig, data: Dataset, model: nn.Module):
    """The `loss` group's choice for the data's task and the model's outputs (logits or probabilities)."""
    with user_errors_unwrapped():
        return instantiate(cfg.loss, task=data.task, outputs=getattr(model, "outputs", "logits"))


def build_components(cfg: DictConfig, device: torch.device, data: Dataset | None = None) -> Components:
    data, model, optimizer, scheduler, interval = build(cfg, device, data)
    reg = cfg.get("reg") or {}
    return Components(
        data, model, optimizer, scheduler, interval, loss=build_loss(cfg, data, model),
        penalty=penalty_from_config(cfg.get("reg")),
        augment=instantiate(reg["augment"]) if "augment" in reg else None,
        stopper=instantiate(reg["early_stopping"]) if "early_stopping" in reg else None,
    )
