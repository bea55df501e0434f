"""Critical-point analysis: Lanczos on Hessian-vector products against the exact Hessian,
and saddles of known functions recognized by the map and escaped along -curvature."""

from __future__ import annotations

import pytest
import torch
from conftest import compose
from torch import nn
from torch.func import functional_call

from dlrun.diagnose import hessian
from dlrun.diagnose.map import diagnose_evidence
from dlrun.records.evidence import Evidence


def exact_eigenvalues(model: nn.Module, loss_fn, x, y) -> torch.Tensor:
    """torch.func.hessian of the loss over all parameters flattened into one vector (float64)."""
    model = model.double()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(theta):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[start : start + shape.numel()].view(shape)
            start += shape.numel()
        return loss_fn(functional_call(model, params, (x.double(),)), y.double())

    return torch.linalg.eigvalsh(torch.func.hessian(f)(flat))


def test_lanczos_matches_the_exact_hessian_eigenvalues():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))  # 50 parameters
    x, y = torch.randn(64, 3), torch.randn(64, 2)
    loss = nn.functional.mse_loss
    cp, _, _ = hessian.critical_point(
        hessian.loss_of_params(model, loss, x, y), dict(model.named_parameters()), iterations=30
    )
    exact = exact_eigenvalues(model, loss, x, y)
    assert exact[0] < 0 < exact[-1]  # a non-convex point: both ends matter
    assert cp.hvp_products <= 30 < exact.numel()  # fewer products than parameters
    assert cp.lambda_max == pytest.approx(float(exact[-1]), rel=1e-3)
    assert cp.lambda_min == pytest.approx(float(exact[0]), rel=1e-3)


class Saddle(nn.Module):
    """f(x, y) = x^2 - y^2, as a 'model' whose output is the loss itself."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2))

    def forward(self, inputs):
        return (self.theta[0] ** 2 - self.theta[1] ** 2).expand(len(inputs))


def value(out, target):
    return out.mean()


def saddle_evidence(cp):
    """A run whose training loss is stalled far above a reference: the map asks where it is stuck."""
    return {
        "params": 10,
        "history": {"epochs": 5, "nonfinite_epoch": None, "stalled": True, "fall_rate": 0.0},
        "loss": {"train": 1.0, "val": 1.0, "test": 1.0},
        "trivial": {"train": 1.0, "val": 1.0, "test": 1.0},
        "references": [{"name": "linear", "params": 3, "train_loss": 0.1, "val_loss": 0.1,
                        "expressible": True}],
        "critical_point": vars(cp),
    }


def stuck(cp) -> str:
    return diagnose_evidence(Evidence.from_json(saddle_evidence(cp)), compose().diagnose).stuck


def test_saddle_of_x2_minus_y2_is_recognized_and_escaped():
    model, x = Saddle(), torch.zeros(4, 1)
    f = hessian.loss_of_params(model, value, x, x)
    params = dict(model.named_parameters())
    cp, direction, gradient = hessian.critical_point(f, params, iterations=10)
    assert cp.grad_norm == 0.0
    assert cp.lambda_max == pytest.approx(2.0) and cp.lambda_min == pytest.approx(-2.0)
    assert torch.allclose(direction.abs(), torch.tensor([0.0, 1.0]), atol=1e-5)  # along y
    assert stuck(cp) == "saddle_point"

    moved = hessian.escape(f, params, direction, gradient)
    assert moved.loss_before == 0.0 and moved.loss_after < -0.1  # downhill along y


def test_tiny_network_at_its_symmetric_point_is_a_saddle():
    """y_hat = w2 * tanh(w1 * x) at w1 = w2 = 0: zero gradient, curvature -+2|E[xy]| (off-diagonal)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.Tanh(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.randn(256, 1)
    y = 0.8 * x
    f = hessian.loss_of_params(model, nn.functional.mse_loss, x, y)
    params = dict(model.named_parameters())
    cp, direction, gradient = hessian.critical_point(f, params, iterations=10)
    c = 2 * float((x * y).mean())
    assert cp.grad_norm < 1e-7
    assert cp.lambda_min == pytest.approx(-c, rel=1e-4) and cp.lambda_max == pytest.approx(
        c, rel=1e-4
    )
    assert stuck(cp) == "saddle_point"
    moved = hessian.escape(f, params, direction, gradient)
    assert moved.loss_after < 0.5 * moved.loss_before


def test_products_match_torch_func_forward_over_reverse():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    f = hessian.loss_of_params(model, nn.functional.cross_entropy, x, y)
    params = {k: p.detach() for k, p in model.named_parameters()}
    _, _, hvp = hessian.gradient_and_hvp(f, params)
    v = torch.randn(sum(p.numel() for p in params.values()))
    chunks = dict(zip(params, torch.split(v, [p.numel() for p in params.values()])))
    tangent = {k: chunks[k].view_as(p) for k, p in params.items()}
    _, hv = torch.func.jvp(torch.func.grad(f), (params,), (tangent,))
    assert torch.allclose(hvp(v), torch.cat([t.reshape(-1) for t in hv.values()]), atol=1e-5)
