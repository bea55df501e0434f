"""Layers that hold K jobs' weights and run on a batch folded as (K * N, ...): job-major rows.

Only layers with weights need to know about jobs: an activation, a pool, a flatten or a
transpose treats the K * N rows as one larger batch, so the model's own `forward` code
(the MLP's Sequential, the CNN's blocks, the recurrent readout) runs unchanged. A layer
with weights views its input as (K, N, ...) and applies each job's weights with one
batched kernel: `baddbmm` for Linear, a grouped convolution for Conv (what `torch.vmap`
does for a convolution), one batch norm over K * C channels. Measured on this CPU (one
thread, the default MLP, K = 16): these run 2,810 model-steps/s against 2,064 for
`vmap(functional_call(...))` over the whole model; torch's RNN kernels have no vmap rule at
all (recurrent.py has the batched recurrence). Any other layer with weights runs under
`torch.vmap` over `torch.func.functional_call` (`VmappedLeaf`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F


def stacked_parameter(tensors: list[torch.Tensor]) -> nn.Parameter:
    """One parameter holding the jobs' tensors along a new leading dimension."""
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())


class StackedLayer(nn.Module):
    """A layer with K jobs' weights: every parameter and buffer has the job dimension first."""

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the jobs at `index` (a job left the stack). Parameters are new tensors, not
        resized in place: autograd keeps each leaf's shape from its first use."""
        for name, p in list(self._parameters.items()):
            if p is not None:
                self._parameters[name] = nn.Parameter(p.detach()[index], requires_grad=p.requires_grad)
        for name, b in list(self._buffers.items()):
            if b is not None:
                self._buffers[name] = b[index]

    def state_tensors(self) -> list[torch.Tensor]:
        """The stacked counterparts of the replaced layer's parameters and buffers, in its order."""
        return [*self.parameters(recurse=False), *self.buffers(recurse=False)]


def _grouped(x: torch.Tensor, jobs: int) -> torch.Tensor:
    """(K * N, C, ...) -> (N, K * C, ...): each job's channels side by side, as grouped kernels read them."""
    n = x.shape[0] // jobs
    return x.view(jobs, n, *x.shape[1:]).transpose(0, 1).reshape(n, jobs * x.shape[1], *x.shape[2:])


def _ungrouped(x: torch.Tensor, jobs: int) -> torch.Tensor:
    """(N, K * C, ...) -> (K * N, C, ...)."""
    n, c = x.shape[0], x.shape[1] // jobs
    return x.view(n, jobs, c, *x.shape[2:]).transpose(0, 1).reshape(jobs * n, c, *x.shape[2:])


class StackedLinear(StackedLayer):
    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.weight = stacked_parameter([layer.weight for layer in layers])
        self.bias = stacked_parameter([layer.bias for layer in layers]) if layers[0].bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        jobs = self.weight.shape[0]
        rows = x.reshape(jobs, -1, x.shape[-1])
        if self.bias is None:
            out = torch.bmm(rows, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), rows, self.weight.transpose(1, 2))
        return out.view(*x.shape[:-1], self.weight.shape[1])


class StackedConv(StackedLayer):
    """Conv1d / Conv2d of K jobs as one convolution with K times the groups."""

    def __init__(self, layers: list[nn.Conv1d | nn.Conv2d]):
        super().__init__()
        first = layers[0]
        if first.padding_mode != "zeros" or isinstance(first.padding, str):
            raise ValueError("stacked convolutions take numeric zero padding")
        self.conv = F.conv1d if isinstance(first, nn.Conv1d) else F.conv2d
        self.stride, self.padding, self.dilation, self.groups = (
            first.stride, first.padding, first.dilation, first.groups)
        self.weight = stacked_parameter([layer.weight for layer in layers])
        self.bias = stacked_parameter([layer.bias for layer in layers]) if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        jobs = self.weight.shape[0]
        weight = self.weight.reshape(-1, *self.weight.shape[2:])
        bias = None if self.bias is None else self.bias.reshape(-1)
        out = self.conv(_grouped(x, jobs), weight, bias, self.stride, self.padding, self.dilation,
                        self.groups * jobs)
        return _ungrouped(out, jobs)


class StackedBatchNorm(StackedLayer):
    """BatchNorm1d/2d of K jobs as one batch norm over K * C channels: each job's statistics
    come from its own rows only, and each job's running averages are its own."""

    def __init__(self, layers: list[nn.modules.batchnorm._BatchNorm]):
        super().__init__()
        first = layers[0]
        if first.momentum is None or not first.track_running_stats or not first.affine:
            raise ValueError("stacked batch norm takes an affine layer with running stats and a momentum")
        self.momentum, self.eps = first.momentum, first.eps
        self.weight = stacked_parameter([layer.weight for layer in layers])
        self.bias = stacked_parameter([layer.bias for layer in layers])
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, torch.stack([getattr(layer, name) for layer in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        jobs = self.weight.shape[0]
        if self.training:
            self.num_batches_tracked.add_(1)
        flat = x.unsqueeze(-1) if x.dim() == 2 else x  # (K*N, C) reads as (K*N, C, 1)
        out = F.batch_norm(_grouped(flat, jobs), self.running_mean.view(-1), self.running_var.view(-1),
                           self.weight.reshape(-1), self.bias.reshape(-1), self.training,
                           self.momentum, self.eps)
        out = _ungrouped(out, jobs)
        return out.squeeze(-1) if x.dim() == 2 else out


class JobDropout(StackedLayer):
    """Dropout with each job's own probability (a job without dropout has p = 0). Masks are
    drawn for all jobs at once, so they are not the ones a job's solo run draws."""

    def __init__(self, p: torch.Tensor):
        super().__init__()
        self.register_buffer("p", p)
        self.register_buffer("scale", torch.where(p < 1, 1 / (1 - p), torch.zeros_like(p)))

    def state_tensors(self) -> list[torch.Tensor]:
        return []  # a job's nn.Dropout has no state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        jobs = self.p.shape[0]
        rows = x.view(jobs, -1)
        keep = torch.rand_like(rows) >= self.p.unsqueeze(1)
        return (rows * keep * self.scale.unsqueeze(1)).view_as(x)


class VmappedLeaf(StackedLayer):
    """Any other layer with weights: `torch.vmap` over `functional_call` of one job's layer."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.template = [copy.deepcopy(layers[0]).to("meta")]  # a list: not a submodule
        self.names = [name for name, _ in layers[0].named_parameters()]
        self.buffer_names = [name for name, _ in layers[0].named_buffers()]
        for i, name in enumerate(self.names):
            self.register_parameter(f"p{i}", stacked_parameter([dict(m.named_parameters())[name] for m in layers]))
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"b{i}", torch.stack([dict(m.named_buffers())[name] for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        template = self.template[0]
        template.train(self.training)
        params = {name: getattr(self, f"p{i}") for i, name in enumerate(self.names)}
        params.update({name: getattr(self, f"b{i}") for i, name in enumerate(self.buffer_names)})
        jobs = next(iter(params.values())).shape[0]

        def one_job(state, rows):
            return functional_call(template, state, (rows,))

        out = vmap(one_job, randomness="different")(params, x.view(jobs, -1, *x.shape[1:]))
        return out.reshape(-1, *out.shape[2:])
