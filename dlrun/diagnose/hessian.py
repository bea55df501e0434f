"""The Hessian's extreme eigenvalues from Hessian-vector products, never the Hessian itself.

`gradient_and_hvp` builds v -> H v for a model's loss (parameters passed through
torch.func.functional_call; products by double backward). `lanczos` runs k steps of Lanczos with full reorthogonalization: k Hessian-vector
products give the extreme eigenvalues (and the eigenvector of the most negative one) to
high accuracy when k is a few dozen, whatever the parameter count. `escape` steps along
that eigenvector, as the notes suggest for a saddle point.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from dlrun.diagnose.budget import Deadline
from dlrun.records.evidence import CriticalPoint, Escape

Vector = torch.Tensor
LossOfParams = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def loss_of_params(
    model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192
) -> LossOfParams:
    """params -> loss of `model` on (x, y), with buffers (batch-norm statistics) held fixed.

    Larger splits are summed chunk by chunk (example-weighted), so a whole training split fits.
    """
    buffers = dict(model.named_buffers())

    def f(params: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for start in range(0, len(x), chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            out = functional_call(model, (params, buffers), (xb,))
            total = total + loss_fn(out, yb) * (len(xb) / len(x))
        return total

    return f


def _flat(tensors) -> Vector:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(v: Vector, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = v[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def _double_backward_safe():
    """Kernels that have a double backward: the math attention kernel (the fused CPU/CUDA
    attention kernels have none) and no cuDNN (its fused RNN kernels have none)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.backends.cudnn.flags(enabled=False))
    stack.enter_context(sdpa_kernel(SDPBackend.MATH))
    return stack


class HessianProducts:
    """v -> H v (flat) at `params`, and the loss and flat gradient there.

    Double backward through a gradient graph built once: each product is one backward
    pass (about 2x cheaper on the CPU than torch.func's jvp of grad, which recomputes the
    forward every time). A layer without a double backward (a custom kernel) switches the
    products to central differences of two gradients, (g(θ + εv) - g(θ - εv)) / 2ε (also
    when the first product disagrees with them), and `method` says which was used.
    """

    def __init__(self, f: LossOfParams, params: dict[str, torch.Tensor]):
        self.f = f
        self.leaves = {k: p.detach().clone().requires_grad_(True) for k, p in params.items()}
        self.method = "double_backward"
        self._checked = False
        with _double_backward_safe(), torch.enable_grad():
            self._loss = f(self.leaves)
            grads = torch.autograd.grad(self._loss, list(self.leaves.values()), create_graph=True,
                                        allow_unused=True, materialize_grads=True)
        self._g = _flat(grads)
        self.loss, self.gradient = self._loss.detach(), self._g.detach()

    def __call__(self, v: Vector) -> Vector:
        if self.method == "double_backward":
            try:
                product = self._exact(v)
            except RuntimeError:  # "derivative for ... is not implemented"
                self.method = "finite_difference"
            else:
                if self._checked or self._agrees(product, v):
                    return product
                self.method = "finite_difference"
        return self._central_difference(v)

    def _agrees(self, product: Vector, v: Vector) -> bool:
        """The first product, checked once against central differences: a custom kernel
        whose backward is not itself differentiable can make double backward silently
        drop terms (torch's `once_differentiable` does) instead of raising.

        Differences are only evidence where they are self-consistent: two step sizes must
        agree. Across ReLU kinks, or in float32 round-off, they do not, and there the exact
        product is kept."""
        self._checked = True
        reference, coarser = self._central_difference(v), self._central_difference(v, 4.0)
        scale = 0.1 * float(reference.norm()) + 1e-8
        if float((reference - coarser).norm()) > scale:
            return True
        return float((product - reference).norm()) <= scale

    def _exact(self, v: Vector) -> Vector:
        if not self._g.requires_grad:  # the loss is linear in every parameter: H = 0
            return torch.zeros_like(v)
        with _double_backward_safe():
            hv = torch.autograd.grad(self._g, list(self.leaves.values()), grad_outputs=v,
                                     retain_graph=True, allow_unused=True, materialize_grads=True)
        return _flat(hv).detach()

    def _gradient_at(self, theta: Vector) -> Vector:
        point = {k: t.requires_grad_(True) for k, t in _unflat(theta, self.leaves).items()}
        with _double_backward_safe(), torch.enable_grad():
            grads = torch.autograd.grad(self.f(point), list(point.values()), allow_unused=True,
                                        materialize_grads=True)
        return _flat(grads).detach()

    def _central_difference(self, v: Vector, step: float = 1.0) -> Vector:
        theta = _flat(self.leaves.values()).detach()
        # sqrt(machine epsilon) relative to the parameters' scale: truncation and round-off
        # errors of the central difference balance there
        eps = step * torch.finfo(theta.dtype).eps ** 0.5 * (1 + float(theta.norm())) / max(float(v.norm()), 1e-30)
        return (self._gradient_at(theta + eps * v) - self._gradient_at(theta - eps * v)) / (2 * eps)


def gradient_and_hvp(f: LossOfParams, params: dict[str, torch.Tensor]):
    """The loss, its flat gradient, and v -> H v (a `HessianProducts`), at `params`."""
    products = HessianProducts(f, params)
    return products.loss, products.gradient, products


def lanczos(
    hvp: Callable[[Vector], Vector],
    n: int,
    iterations: int,
    *,
    device,
    dtype,
    generator: torch.Generator | None = None,
    tol: float = 1e-6,
    deadline: Deadline | None = None,
) -> dict:
    """Extreme eigenpairs of the symmetric operator `hvp` (n x n) after at most `iterations` products.

    Stops early when both extreme Ritz pairs have residual below `tol` x the spectral radius,
    or when the `deadline` allows no further product (`cut_short`; at least two are taken).
    Returns lambda_min, lambda_max, the unit eigenvector of lambda_min, and the products used.
    """
    k = min(iterations, n)
    deadline = deadline or Deadline(None)
    cut_short = False
    q = torch.randn(n, device=device, dtype=dtype, generator=generator)
    q /= q.norm()
    basis: list[Vector] = []
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(k):
        if j < 2:
            deadline.tick()  # two products at least, timed so the third is judged by them
        elif not deadline.allows():
            cut_short = True
            break
        basis.append(q)
        w = hvp(q)
        alpha = torch.dot(w, q)
        w = w - alpha * q - (betas[-1] * basis[-2] if betas else 0)
        Q = torch.stack(basis)
        for _ in range(2):  # full reorthogonalization, twice is enough
            w = w - Q.T @ (Q @ w)
        beta = w.norm()
        alphas.append(float(alpha))
        T = _tridiagonal(alphas, betas)
        evals, evecs = torch.linalg.eigh(T)
        radius = max(abs(float(evals[0])), abs(float(evals[-1])), 1e-30)
        residual = float(beta) * evecs[-1, [0, -1]].abs().max()
        if float(beta) <= 1e-10 * radius or (j >= 2 and residual <= tol * radius):
            break
        betas.append(float(beta))
        q = w / beta
    Q = torch.stack(basis).to(torch.float64)
    u = Q.T @ evecs[:, 0].to(Q.device)
    return {
        "lambda_min": float(evals[0]),
        "lambda_max": float(evals[-1]),
        "vector_min": (u / u.norm()).to(dtype),
        "products": len(basis),
        "cut_short": cut_short,
    }


def _tridiagonal(alphas: list[float], betas: list[float]) -> torch.Tensor:
    m = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return T


def critical_point(
    f: LossOfParams,
    params: dict[str, torch.Tensor],
    iterations: int,
    seed: int = 0,
    deadline: Deadline | None = None,
    gradient: Vector | None = None,
) -> tuple[CriticalPoint, Vector, Vector]:
    """Gradient norm and extreme Hessian eigenvalues of f at params; also the eigenvector of
    the most negative eigenvalue and the gradient used (for the escape step).

    `gradient`, when given, replaces f's own (e.g. the full training set's gradient when f
    is the loss on a sample: a sample's gradient is noisy where the full one vanishes).

    `descent_gain` = |g|^2 / (2 |lambda|max): how much the best step along the gradient
    can lower the loss under the local quadratic model. Tiny gain = a critical point.
    """
    loss, g, hvp = gradient_and_hvp(f, params)
    g = g if gradient is None else gradient
    generator = torch.Generator(device=g.device).manual_seed(seed)
    eig = lanczos(
        hvp,
        g.numel(),
        iterations,
        device=g.device,
        dtype=g.dtype,
        generator=generator,
        deadline=deadline,
    )
    spread = max(abs(eig["lambda_max"]), abs(eig["lambda_min"]), 1e-30)
    gnorm = float(g.norm())
    along = float(torch.dot(g, hvp(g))) / gnorm**2 if gnorm > 0 else None
    point = CriticalPoint(
        loss=float(loss),
        grad_norm=gnorm,
        lambda_max=eig["lambda_max"],
        lambda_min=eig["lambda_min"],
        descent_gain=gnorm**2 / (2 * spread),
        curvature_along_gradient=along,
        hvp_products=eig["products"],
        hvp_method=hvp.method,
        cut_short=eig["cut_short"],
    )
    return point, eig["vector_min"], g


def escape(
    f: LossOfParams,
    params: dict[str, torch.Tensor],
    direction: Vector,
    gradient: Vector,
    steps: int = 16,
    deadline: Deadline | None = None,
) -> Escape:
    """Step along the negative-curvature eigenvector (downhill sign) and keep the best length.

    Lengths double from 1e-3 x max(1, |params|): the first-order term is ~0 at a saddle,
    so the loss falls as lambda_min t^2 / 2 until higher-order terms take over.
    """
    params = {k: p.detach() for k, p in params.items()}
    theta = _flat(params.values())
    sign = -1.0 if float(torch.dot(gradient, direction)) > 0 else 1.0
    d = sign * direction
    with torch.no_grad():
        before = float(f(params))
        best_t, best = 0.0, before
        t = 1e-3 * max(1.0, float(theta.norm()))
        deadline = deadline or Deadline(None)
        for _ in range(steps):
            if not deadline.allows():
                break
            loss = float(f(_unflat(theta + t * d, params)))
            if loss < best:
                best_t, best = t, loss
            t *= 2
    return Escape(loss_before=before, loss_after=best, step=best_t)
