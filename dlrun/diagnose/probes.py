"""Cheap end-of-run measurements on the trained model: gradients by depth, dead ReLUs,
input scale. Each is one forward (and backward) pass over a sample of the training set.
"""

from __future__ import annotations

import torch
from torch import nn

from dlrun.diagnose.budget import Deadline
from dlrun.records.evidence import DeadRelu, InputScale, LayerGradients, SplitLosses, TimeGradients


def sample(x: torch.Tensor, y: torch.Tensor, limit: int, seed: int = 0):
    """At most `limit` training examples, drawn without replacement (all of them if fewer)."""
    if len(x) <= limit:
        return x, y
    generator = torch.Generator(device="cpu").manual_seed(seed)
    index = torch.randperm(len(x), generator=generator)[:limit].to(x.device)
    return x[index], y[index]


def full_gradient(
    model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096,
    deadline: Deadline | None = None,
) -> torch.Tensor | None:
    """The gradient of the loss over the whole training split (chunked), flat, in eval mode;
    None when `deadline` passes before every chunk is done (a partial sum is no gradient).

    A sample's gradient carries sampling noise that hides a critical point of the full loss,
    so the gradient is always taken over every training example.
    """
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    trainable = [i for i, p in enumerate(params) if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), chunk):
            if deadline is not None and not deadline.allows():
                return None
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            value = loss_fn(model(xb), yb) * (len(xb) / len(x))
            grads = torch.autograd.grad(
                value, [params[i] for i in trainable], allow_unused=True, materialize_grads=True
            )
            for i, g in zip(trainable, grads):
                total[i] += g
    finally:
        model.train(was_training)
    return torch.cat([t.reshape(-1) for t in total]).detach()


def layer_gradients(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> LayerGradients | None:
    """RMS gradient per weight of the first and the last weight matrix (or kernel).

    Per-weight RMS, not the norm, so layers of different sizes compare; `ratio` = first / last.
    """
    weights = [(name, p) for name, p in model.named_parameters() if p.ndim >= 2 and p.requires_grad]
    if len(weights) < 2:
        return None
    was_training = model.training
    model.eval()
    grads = torch.autograd.grad(
        loss_fn(model(x), y), [weights[0][1], weights[-1][1]], allow_unused=True
    )
    model.train(was_training)
    if any(g is None for g in grads):
        return None
    first, last = (float(g.square().mean().sqrt()) for g in grads)
    return LayerGradients(weights[0][0], weights[-1][0], first, last,
                          first / last if last > 0 else None)


@torch.no_grad()
def dead_relus(model: nn.Module, x: torch.Tensor) -> DeadRelu | None:
    """Fraction of ReLU units (features, or channels of a feature map) never positive on `x`."""
    alive: list[torch.Tensor] = []

    def hook(module, inputs, output):
        # units along dim 1 (features / channels); a unit lives if it fires anywhere
        active = (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)
        alive.append(active)

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) is nn.ReLU]
    if not handles:
        return None
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not alive:
        return None
    units = sum(a.numel() for a in alive)
    dead = sum(int((~a).sum()) for a in alive)
    return DeadRelu(units, dead, dead / units if units else 0.0)


@torch.no_grad()
def input_scale(x: torch.Tensor) -> InputScale | None:
    """How unevenly the input features are scaled, and how far from unit scale.

    Features are the last axis of sequences, the channels of images, the columns of
    tabular data (pixels of one channel legitimately differ, so they are not compared).
    `spread` is the largest of: max/min feature std, a feature's |mean| in its own stds,
    and the distance of the overall scale from 1 (either way).
    """
    if not x.is_floating_point():
        return None  # token ids
    if x.ndim == 4:  # (N, C, H, W): one feature per channel
        flat = x.transpose(0, 1).reshape(x.shape[1], -1).T
    else:
        flat = x.reshape(-1, x.shape[-1]) if x.ndim == 3 else x.reshape(len(x), -1)
    flat = flat.float()
    std = flat.std(dim=0)
    live = std > 1e-8
    if not bool(live.any()):
        return None
    mean = flat.mean(dim=0)[live].abs()
    std = std[live]
    spread = max(
        float(std.max() / std.min()),
        float((mean / std).max()),
        float(std.max()),
        float(1 / std.min()),
    )
    return InputScale(spread, float(std.min()), float(std.max()), float(mean.max()))


@torch.no_grad()
def loss_spread(model: nn.Module, loss_fn, data, chunk: int = 4096) -> SplitLosses:
    """The standard error of each split's mean loss, from its per-example losses: a gap
    between splits smaller than a few of these is sampling noise, not a difference."""
    was_training = model.training
    model.eval()
    try:
        errors = {}
        for split in ("train", "val", "test"):
            x, y = data.split(split)
            losses = torch.cat([loss_fn.per_example(model(x[i : i + chunk]), y[i : i + chunk])
                                for i in range(0, len(x), chunk)]).double()
            n = len(losses)
            errors[split] = float(losses.std() / n**0.5) if n > 1 else None
    finally:
        model.train(was_training)
    return SplitLosses(**errors)


def time_gradients(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> TimeGradients | None:
    """Gradient norm reaching each input step of a recurrent model, early steps against late.

    Float sequences (N, T, F) take the gradient at the input; token ids at the embedding's
    output. None for models without a recurrent layer (attention and convolutions do not
    backpropagate through time) or inputs shorter than 4 steps.
    """
    if not any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return None
    steps: list[torch.Tensor] = []
    handle = None
    if x.is_floating_point():
        inputs = x.detach().clone().requires_grad_(True)
        steps.append(inputs)
    else:
        embedding = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
        if embedding is None:
            return None

        def keep(module, args, output):
            output.retain_grad()
            steps.append(output)

        handle = embedding.register_forward_hook(keep)
        inputs = x
    was_training = model.training
    model.eval()
    try:
        with torch.backends.cudnn.flags(enabled=False), torch.enable_grad():
            loss_fn(model(inputs), y).backward()
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
        if handle is not None:
            handle.remove()
    grad = steps[0].grad if steps else None
    if grad is None or grad.ndim not in (2, 3) or grad.shape[1] < 4:
        return None  # images are read row by row: no single time axis to compare
    # (N, T, F): the norm over each step's features; (N, T): a row read one value per step
    per_step = (grad.norm(dim=-1) if grad.ndim == 3 else grad.abs()).mean(dim=0)
    quarter = per_step.shape[0] // 4
    early, late = float(per_step[:quarter].mean()), float(per_step[-quarter:].mean())
    return TimeGradients(steps=int(per_step.shape[0]), early=early, late=late,
                         ratio=early / late if late > 0 else None)
