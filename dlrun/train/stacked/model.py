"""K jobs' models of one architecture as one module, and each job's weights back out of it.

`StackedNet` is a copy of one job's model whose layers with weights are replaced by
stacked layers (layers.py, recurrent.py), in place, so the model's own `forward` runs
on the folded (K * N, ...) batch. Each job's weights start as its own built model's: the
solo run's initialization, bit for bit. Jobs are matched layer by layer in module order
rather than by parameter name, because names can differ between jobs of one architecture
(an MLP builds its Dropout layers only when p > 0, which shifts Sequential indices), so
torch.func.stack_module_state, which matches by name, does not apply.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dlrun.train.stacked.layers import (
    JobDropout,
    StackedBatchNorm,
    StackedConv,
    StackedLayer,
    StackedLinear,
    VmappedLeaf,
)
from dlrun.train.stacked.recurrent import StackedRecurrent


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False))


def _stateful_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if _has_state(m)]


def _state(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(recurse=False), *module.buffers(recurse=False)]


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attribute, new)


def _stacked(layers: list[nn.Module], dropout: torch.Tensor) -> StackedLayer:
    first = layers[0]
    if isinstance(first, nn.Linear):
        return StackedLinear(layers)
    if isinstance(first, (nn.Conv1d, nn.Conv2d)):
        return StackedConv(layers)
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return StackedBatchNorm(layers)
    if isinstance(first, nn.RNNBase):
        return StackedRecurrent(layers, dropout)
    return VmappedLeaf(layers)


class StackedNet(nn.Module):
    """K models as one: input (K * N, ...) in job-major order, output likewise."""

    def __init__(self, models: list[nn.Module], dropout: list[float]):
        super().__init__()
        shapes = [[tuple(t.shape) for t in m.state_dict().values()] for m in models]
        if any(s != shapes[0] for s in shapes):
            raise ValueError("stacked models must have the same parameter and buffer shapes")
        device = next(models[0].parameters()).device
        p = torch.tensor(dropout, dtype=torch.float32, device=device)
        # the job with the largest dropout has a Dropout layer wherever any job has one
        self.net = copy.deepcopy(models[max(range(len(models)), key=lambda k: dropout[k])])
        per_job = [_stateful_layers(m) for m in models]
        for i, (name, _) in enumerate(_stateful_layers(self.net)):
            _replace(self.net, name, _stacked([layers[i][1] for layers in per_job], p))
        for name, module in list(self.net.named_modules()):
            if type(module) is nn.Dropout:
                _replace(self.net, name, JobDropout(p) if max(dropout) > 0 else nn.Identity())
        self.layers = [m for m in self.net.modules() if isinstance(m, StackedLayer)]
        self.jobs = len(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def keep(self, index: list[int]) -> None:
        """Keep only the jobs at `index`, in that order (the others left the stack)."""
        where = torch.tensor(index, dtype=torch.long, device=next(self.parameters()).device)
        for layer in self.layers:
            layer.keep(where)
        self.jobs = len(index)

    def state(self) -> list[torch.Tensor]:
        """Every stacked parameter and buffer, in the order of a job model's own (`unstack_into`)."""
        return [t for layer in self.layers for t in layer.state_tensors()]

    @torch.no_grad()
    def unstack_into(self, k: int, model: nn.Module, state: list[torch.Tensor] | None = None) -> nn.Module:
        """Copy job `k`'s row of every stacked tensor (of `state`, a copy of `self.state()`
        taken earlier, when given) into the job's own `model`."""
        own = [t for _, layer in _stateful_layers(model) for t in _state(layer)]
        for stacked, mine in zip(self.state() if state is None else state, own, strict=True):
            mine.copy_(stacked[k])
        return model
