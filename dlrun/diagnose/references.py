"""What "large" is measured against: the trivial predictor, simpler reference models fit
to the same training data, and the user's own model on a tiny subset.

- trivial: the best constant output (training mean / median, class prior);
- references: linear/logistic regression and a one-hidden-layer MLP, each fit by full-batch
  L-BFGS for a few dozen iterations (a second or less on the presets);
- tiny subset: a fresh copy of the user's model and optimizer on a few dozen examples.

All losses use the run's own loss (on logits), so the numbers compare with metrics.jsonl.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import nn

from dlrun.diagnose.budget import Deadline
from dlrun.diagnose.probes import sample
from dlrun.records.evidence import Reference, SplitLosses, TinySubset
from dlrun.train.losses import IGNORE


def logits_loss(loss):
    """The run's loss applied to raw scores (the references output logits, not probabilities)."""
    if getattr(loss, "outputs", "logits") == "logits":
        return loss
    twin = copy.copy(loss)
    twin.outputs = "logits"
    return twin


@torch.no_grad()
def mean_loss(
    fn: Callable[[torch.Tensor], torch.Tensor],
    loss,
    x: torch.Tensor,
    y: torch.Tensor,
    chunk: int = 8192,
) -> float:
    """Example-weighted mean of loss(fn(x), y) over chunks."""
    total = 0.0
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        total += float(loss(fn(xb), yb)) * len(xb)
    return total / max(len(x), 1)


def _labelled(y: torch.Tensor) -> torch.Tensor:
    return y[y != IGNORE]


def constant_output(task: str, y_fit: torch.Tensor, n_outputs: int):
    """Candidate constant predictors fit on `y_fit`: functions y -> output shaped for y."""
    if task == "regression":
        flat = y_fit.reshape(-1, y_fit.shape[-1]).float()
        centres = [flat.mean(dim=0), flat.median(dim=0).values]
        return [lambda y, c=c: c.expand(y.shape) for c in centres]
    labels = _labelled(y_fit)
    if task == "binary":
        p = labels.float().mean().clamp(1e-6, 1 - 1e-6)
        logit = torch.log(p / (1 - p))
        return [lambda y: logit.expand(*y.shape, 1)]
    counts = torch.bincount(labels, minlength=n_outputs).float() + 1e-3
    log_prior = (counts / counts.sum()).log()
    return [lambda y: log_prior.expand(*y.shape, n_outputs)]


def trivial_losses(data, loss) -> SplitLosses:
    """The best constant predictor's loss on each split (fit on the training split)."""
    loss = logits_loss(loss)
    candidates = constant_output(data.task, data.y_train, data.out_features)
    best = min(candidates, key=lambda c: _constant_loss(c, loss, data.y_train))
    return SplitLosses(**{split: _constant_loss(best, loss, data.split(split)[1])
                          for split in ("train", "val", "test")})


def _constant_loss(predict, loss, y, chunk: int = 8192) -> float:
    total = 0.0
    for start in range(0, len(y), chunk):
        yb = y[start : start + chunk]
        total += float(loss(predict(yb), yb)) * len(yb)
    return total / max(len(y), 1)


def _per_step(data) -> bool:
    return bool(getattr(data, "per_step", False)) or (
        data.x_train.ndim == 3 and data.y_train.ndim == 3
    )


def reference_models(data, hidden: int) -> dict[str, nn.Module]:
    """Linear/logistic regression and a one-hidden-layer ReLU MLP for this data's shapes.

    Per-step labels get per-step maps (features of a step -> that step's output).
    """
    per_step = _per_step(data)
    width = data.x_train.shape[-1] if per_step else math.prod(data.input_shape)
    head = [] if per_step else [nn.Flatten()]
    out = data.out_features
    return {
        "linear": nn.Sequential(*head, nn.Linear(width, out)),
        f"mlp[{hidden}]": nn.Sequential(
            *head, nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, out)
        ),
    }


def fit_lbfgs(
    model: nn.Module,
    loss,
    x: torch.Tensor,
    y: torch.Tensor,
    iterations: int,
    l2: float = 1e-4,
    deadline: Deadline | None = None,
    chunk: int = 5,
) -> int:
    """Full-batch L-BFGS with a strong-Wolfe line search and a light L2 penalty on weights.

    Runs `chunk` iterations per call (the optimizer keeps its history between calls), each
    chunk only if the `deadline` allows it. Returns the iterations run.
    """
    deadline = deadline or Deadline(None)
    params = list(model.parameters())
    weights = [p for p in params if p.ndim >= 2]
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=chunk,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure():
        optimizer.zero_grad()
        value = loss(model(x), y) + l2 * sum(w.square().sum() for w in weights)
        value.backward()
        return value

    done = 0
    while done < iterations and deadline.allows():
        optimizer.step(closure)
        done += chunk
    return min(done, iterations)


def fit_references(
    data,
    loss,
    *,
    hidden: int,
    iterations: int,
    max_examples: int,
    seed: int,
    deadline: Deadline | None = None,
) -> list[Reference]:
    """Fit each reference on (a sample of) the training split; its loss on every split.

    Each gets an equal share of the time left before `deadline`.
    """
    end = deadline.at if deadline is not None else None
    if not data.x_train.is_floating_point():
        return []  # token ids: a linear map of ids means nothing
    loss = logits_loss(loss)
    x, y = sample(data.x_train, data.y_train, max_examples, seed)
    results = []
    with torch.random.fork_rng(devices=[data.x_train.device] if data.x_train.is_cuda else []):
        torch.manual_seed(seed)
        models = reference_models(data, hidden)
        for k, (name, ref) in enumerate(models.items()):
            started = time.perf_counter()
            share = Deadline(None if end is None else started + (end - started) / (len(models) - k))
            ref = ref.to(data.x_train.device)
            with torch.enable_grad():
                done = fit_lbfgs(ref, loss, x, y, iterations, deadline=share)
            if share.refused and deadline is not None:
                deadline.refused = True
            if done == 0:  # no time for even one step: an unfit reference says nothing
                continue
            ref.eval()
            losses = {}
            for split in ("train", "val", "test"):
                value = mean_loss(ref, loss, *data.split(split))
                losses[f"{split}_loss"] = value if math.isfinite(value) else None
            results.append(Reference(name, sum(p.numel() for p in ref.parameters()), done,
                                     **losses, seconds=time.perf_counter() - started))
    return results


def tiny_subset(
    make_model: Callable[[], nn.Module],
    make_optimizer,
    loss,
    data,
    *,
    size: int,
    steps: int,
    seed: int,
    deadline: Deadline | None = None,
) -> TinySubset:
    """Can a fresh copy of the model, with the run's optimizer, memorize `size` training examples?

    `targets` counts what must be memorized (labels, labelled steps, or regression outputs);
    when the `deadline` allows no more steps it stops early and says so (`cut_short`).
    """
    deadline = deadline or Deadline(None)
    x, y = sample(data.x_train, data.y_train, size, seed)
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        model = make_model()
        optimizer = make_optimizer(model.parameters())
        model.train()
        done = 0
        with torch.enable_grad():
            while done < steps and deadline.allows():
                optimizer.zero_grad(set_to_none=True)
                loss(model(x), y).backward()
                optimizer.step()
                done += 1
    model.eval()
    with torch.no_grad():
        final = float(loss(model(x), y))
    constant = constant_output(data.task, y, data.out_features)
    trivial = min(_constant_loss(c, logits_loss(loss), y) for c in constant)
    targets = int(y.numel()) if data.task == "regression" else int((y != IGNORE).sum())
    params = sum(p.numel() for p in model.parameters())
    return TinySubset(n=len(x), targets=targets, params=params, steps=done,
                      cut_short=done < steps, loss=final if math.isfinite(final) else None,
                      trivial=trivial)


# layers that keep a network "fully connected": a chain of linear maps and elementwise ops
_ELEMENTWISE = (nn.Linear, nn.Flatten, nn.Dropout, nn.BatchNorm1d, nn.LayerNorm, nn.Identity,
                nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Sigmoid, nn.Tanh,
                nn.Softplus, nn.Softmax, nn.LogSoftmax)


def expressible(reference: str, model: nn.Module, hidden: int) -> bool | None:
    """Can the run's architecture represent this reference, so that the reference's loss
    bounds what the architecture can reach? Judged for fully connected models only (a
    chain of linear layers and elementwise activations; None for any other): a linear map
    of rank r passes through hidden layers at least r wide, so the linear reference needs
    every hidden width >= min(inputs, outputs); the one-hidden-layer MLP needs a hidden
    layer and every hidden width >= its width. Parameter counts say nothing: a network
    with a 1-unit layer sees one projection of its input, whatever its size."""
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    if not leaves or not all(isinstance(m, _ELEMENTWISE) for m in leaves):
        return None
    linears = [m for m in leaves if isinstance(m, nn.Linear)]
    if not linears:
        return None
    widths = [m.out_features for m in linears[:-1]]
    if reference == "linear":
        rank = min(linears[0].in_features, linears[-1].out_features)
        return all(w >= rank for w in widths)
    return bool(widths) and all(w >= hidden for w in widths)


def affine(model: nn.Module) -> bool:
    """One linear map (softmax or sigmoid on top at most): with the run's convex losses, its
    training loss is convex in the parameters, so a full fit finds the optimum itself."""
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    return (bool(leaves) and all(isinstance(m, _ELEMENTWISE) for m in leaves)
            and sum(isinstance(m, nn.Linear) for m in leaves) == 1
            and not any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in leaves))


def outputs_a_constant(model: nn.Module) -> bool:
    """Can the model output any constant? Its last linear map has a bias (every shipped
    model's head does): zero the weights, set the bias."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return bool(last) and last[-1].bias is not None
