"""What the run's own architecture can reach: a fresh copy fit hard to the training data.

The notes define model bias as "no function in the model's set makes the loss small". A
reference of another shape cannot say that for the user's model (a network that sees one
linear projection of its input cannot separate three spiral arms, however many
parameters it has), so this probe fits the user's architecture itself: full-batch L-BFGS
(quasi-Newton steps need no learning rate), then, if that did not get below the bar,
full-batch Adam with a decaying learning rate for the rest of the budget. Its training
loss is an upper bound on the best the architecture can do: below the bar, the run
failed to optimize; above it, with the budget spent well, model bias.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from dlrun.diagnose.budget import Deadline
from dlrun.diagnose.probes import sample
from dlrun.diagnose.references import affine, fit_lbfgs, mean_loss
from dlrun.records.evidence import OwnOptimum


def _without_dropout(model: nn.Module) -> nn.Module:
    """Evaluation mode: no dropout, batch norm as a fixed affine map (the same function the
    architecture can represent, without the noise that training adds)."""
    return model.eval()


def _adam(model: nn.Module, loss, x, y, deadline: Deadline, steps: int) -> int:
    """Full-batch Adam, lr 1e-2 halved whenever 25 steps bring no new best; the best weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    best, best_state, waited = math.inf, None, 0
    done = 0
    while done < steps and deadline.allows():
        optimizer.zero_grad(set_to_none=True)
        value = loss(model(x), y)
        current = float(value.detach())  # one host read per step: a probe, not the training loop
        if not math.isfinite(current):
            break
        if current < best * (1 - 1e-4):  # these weights are the best so far
            best, waited = current, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= 25:
                for group in optimizer.param_groups:
                    group["lr"] *= 0.5
                waited = 0
        value.backward()
        optimizer.step()
        done += 1
    if best_state is not None:
        model.load_state_dict(best_state)
    return done


def own_optimum(
    make_model: Callable[[], nn.Module],
    loss,
    data,
    *,
    bar: float,
    max_examples: int,
    iterations: int,
    seed: int,
    deadline: Deadline | None = None,
) -> OwnOptimum:
    """Fit a fresh `make_model()` to (a sample of) the training split; its loss on all of it.

    L-BFGS first (at most `iterations`), then Adam if the fit is not below `bar`, each
    stopping at `deadline`. `cut_short` says the budget, not convergence, ended the fit.
    """
    started = time.perf_counter()
    deadline = deadline or Deadline(None)
    x, y = sample(data.x_train, data.y_train, max_examples, seed)
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.manual_seed(seed)
        model = _without_dropout(make_model())
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # cuDNN's fused RNN kernels train only in training mode; the plain kernels do in eval mode
    with torch.backends.cudnn.flags(enabled=False), torch.enable_grad():
        done = fit_lbfgs(model, loss, x, y, iterations, l2=0.0, deadline=deadline, chunk=3)
        method, fit = "lbfgs", mean_loss(model, loss, x, y)
        # L-BFGS that ran its iterations is a finished fit; Adam only tries to do better
        cut = done < iterations
        if not math.isfinite(fit) or fit >= bar:
            diverged = not math.isfinite(fit)
            if diverged:
                model.load_state_dict(initial)  # L-BFGS diverged: Adam starts afresh
            steps = 20 * iterations
            more = _adam(model, loss, x, y, deadline, steps)
            adam_fit = mean_loss(model, loss, x, y)
            if math.isfinite(adam_fit) and (diverged or adam_fit < fit):
                method, fit = "lbfgs+adam", adam_fit
            done += more
            cut = cut or (diverged and more < steps)
    train = mean_loss(model, loss, data.x_train, data.y_train)
    return OwnOptimum(
        train_loss=train if math.isfinite(train) else None,
        fit_loss=fit if math.isfinite(fit) else None,
        examples=len(x),
        method=method,
        iterations=done,
        cut_short=bool(cut),
        seconds=time.perf_counter() - started,
        convex=affine(model),
    )
