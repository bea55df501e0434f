"""Per-job optimizers: torch.optim's update rules on stacked weights, hyperparameters per job.

Each job's hyperparameters come from its own torch.optim optimizer (built by dlrun.build
exactly as its solo run builds it, so torch validates them) and become float64 tensors of
shape [K]. Each step follows the arithmetic of torch's single-tensor implementation of
that optimizer, operation for operation: a value torch computes in Python (a bias
correction, a step size) is computed here in float64 and rounded to the weights' dtype
where torch hands it to a kernel as a scalar, and a per-job value broadcasts over its
job's rows. So one job's update equals torch's for-loop implementation bit for bit
(tests/test_stacked_optim.py), and torch's fused kernels (what a solo run uses on CPU and CUDA where
they exist) within float rounding. torch.optim cannot do this itself: its
hyperparameters are one Python number per parameter group, shared by every row of a
tensor. (`x.add(y, alpha=a)` is one fused multiply-add in torch's kernels, and so is
`torch.addcmul(x, y, a)` with a tensor `a`, so every such step is written with addcmul.)
State tensors carry the names torch.optim gives them (`exp_avg`, `momentum_buffer`,
...), so `job_state` hands a job's slice back in torch's own format for its checkpoint.
"""

from __future__ import annotations

import torch

FLAGS = ("amsgrad", "nesterov", "centered", "decoupled_weight_decay", "maximize")


class StackedOptimizer:
    """The shared part: per-job scalars, per-parameter state, dropping jobs, torch's state format."""

    state_keys: tuple[str, ...] = ()
    counts_steps = True  # torch keeps a `step` per parameter (SGD does not)

    def __init__(self, params: list[torch.nn.Parameter], groups: list[dict]):
        self.params = list(params)
        self.steps = 0
        device = self.params[0].device
        self.flags = {key: groups[0].get(key, False) for key in FLAGS}
        if any(g.get(key, False) != value for g in groups for key, value in self.flags.items()):
            raise ValueError("jobs of one stack must agree on the optimizer's flags")
        if self.flags["maximize"]:
            raise ValueError("stacked optimizers minimize")
        self.h: dict[str, torch.Tensor] = {}
        for key, value in groups[0].items():
            if key in ("betas",):
                for i, name in enumerate(("beta1", "beta2")):
                    self.h[name] = torch.tensor([float(g[key][i]) for g in groups],
                                                dtype=torch.float64, device=device)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                self.h[key] = torch.tensor([float(g[key]) for g in groups],
                                           dtype=torch.float64, device=device)
        self.state = {key: [self.initial(key, p) for p in self.params] for key in self.state_keys}
        self._refresh()

    def _refresh(self) -> None:
        """Which per-job scalars are non-zero for some job: read once, not at every step."""
        self.nonzero = {key: bool((value != 0).any()) for key, value in self.h.items()}
        self.positive = {key: (bool((value > 0).any()), bool((value > 0).all()))
                         for key, value in self.h.items()}

    def initial(self, key: str, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(p)

    def scalar(self, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A per-job value as torch hands it to a kernel: rounded to the weights' dtype, and
        shaped (K, 1, ...) to broadcast over each job's rows of `like`."""
        return value.to(like.dtype).view(-1, *[1] * (like.dim() - 1))

    def any(self, key: str) -> bool:
        return self.nonzero[key]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: torch.Tensor) -> None:
        """One update with this step's learning rate of each job (float64, [K])."""
        self.steps += 1
        self.update(lr, [p.grad for p in self.params])

    def update(self, lr: torch.Tensor, grads: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the jobs at `index` (the parameters are sliced by the model)."""
        self.h = {key: value[index] for key, value in self.h.items()}
        self.state = {key: [t[index] for t in tensors] for key, tensors in self.state.items()}
        self._refresh()

    def has_state(self, key: str, k: int) -> bool:
        """Whether torch keeps `key` for job `k` (SGD and RMSprop keep no momentum buffer at 0)."""
        return True

    def job_state(self, k: int) -> list[dict[str, torch.Tensor]]:
        """Job `k`'s state of each parameter, as torch.optim stores it (tensors cloned)."""
        out = []
        for i in range(len(self.params)):
            entry = {key: tensors[i][k].clone() for key, tensors in self.state.items()
                     if self.has_state(key, k)}
            if self.counts_steps:
                entry["step"] = torch.tensor(float(self.steps), dtype=torch.float32)
            out.append(entry)
        return out

    def decayed(self, g: torch.Tensor, p: torch.Tensor, wd: torch.Tensor | None) -> torch.Tensor:
        """grad.add(param, alpha=weight_decay), skipped when no job decays."""
        return g if wd is None else torch.addcmul(g, p, self.scalar(wd, p))


class StackedSGD(StackedOptimizer):
    """torch.optim.SGD: optim=gd, sgd, momentum, nesterov."""

    state_keys = ("momentum_buffer",)
    counts_steps = False

    def has_state(self, key, k):
        return bool(self.h["momentum"][k] != 0)

    def update(self, lr, grads):
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        momentum = self.any("momentum")
        # torch ignores dampening without momentum: a job at momentum 0 gets buf = g exactly
        damped = 1 - torch.where(self.h["momentum"] != 0, self.h["dampening"], 0.0)
        for p, g, buf in zip(self.params, grads, self.state["momentum_buffer"]):
            g = self.decayed(g, p, wd)
            if momentum:
                if self.steps == 1:
                    buf.copy_(g)
                else:
                    buf.mul_(self.scalar(self.h["momentum"], p)).addcmul_(g, self.scalar(damped, p))
                if self.flags["nesterov"]:
                    g = torch.addcmul(g, buf, self.scalar(self.h["momentum"], p))
                else:
                    g = buf
            p.addcmul_(g, self.scalar(-lr, p))


class StackedAdam(StackedOptimizer):
    """torch.optim.Adam and AdamW (decoupled weight decay)."""

    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        if not self.flags["amsgrad"]:
            del self.state["max_exp_avg_sq"]

    def update(self, lr, grads):
        beta1, beta2, eps = self.h["beta1"], self.h["beta2"], self.h["eps"]
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        decoupled = self.flags["decoupled_weight_decay"]
        step_size = lr / (1 - beta1**self.steps)
        bias2_sqrt = (1 - beta2**self.steps) ** 0.5
        maxima = self.state.get("max_exp_avg_sq", [None] * len(self.params))
        for p, g, m, v, vmax in zip(self.params, grads, self.state["exp_avg"],
                                    self.state["exp_avg_sq"], maxima):
            if decoupled and wd is not None:
                p.mul_(self.scalar(1 - lr * wd, p))
            elif not decoupled:
                g = self.decayed(g, p, wd)
            m.lerp_(g, self.scalar(1 - beta1, p))
            v.mul_(self.scalar(beta2, p)).addcmul_(g * self.scalar(1 - beta2, p), g)
            if vmax is not None:
                torch.maximum(vmax, v, out=vmax)
            denom = ((v if vmax is None else vmax).sqrt() / self.scalar(bias2_sqrt, p)).add_(
                self.scalar(eps, p))
            p.addcdiv_(m * self.scalar(-step_size, p), denom)


class StackedAdagrad(StackedOptimizer):
    state_keys = ("sum",)

    def initial(self, key, p):
        return self.scalar(self.h["initial_accumulator_value"], p).expand_as(p).clone()

    def update(self, lr, grads):
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        clr = lr / (1 + (self.steps - 1) * self.h["lr_decay"])
        for p, g, total in zip(self.params, grads, self.state["sum"]):
            g = self.decayed(g, p, wd)
            total.addcmul_(g, g)
            std = total.sqrt().add_(self.scalar(self.h["eps"], p))
            p.addcdiv_(g * self.scalar(-clr, p), std)


class StackedRMSprop(StackedOptimizer):
    state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        if not self.flags["centered"]:
            del self.state["grad_avg"]

    def has_state(self, key, k):
        return key != "momentum_buffer" or bool(self.h["momentum"][k] > 0)

    def update(self, lr, grads):
        alpha, eps, momentum = self.h["alpha"], self.h["eps"], self.h["momentum"]
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        some, every = self.positive["momentum"]
        averages = self.state.get("grad_avg", [None] * len(self.params))
        for p, g, sq, buf, ga in zip(self.params, grads, self.state["square_avg"],
                                     self.state["momentum_buffer"], averages):
            g = self.decayed(g, p, wd)
            sq.mul_(self.scalar(alpha, p)).addcmul_(g * self.scalar(1 - alpha, p), g)
            if ga is not None:
                ga.lerp_(g, self.scalar(1 - alpha, p))
                avg = sq.addcmul(-ga, ga).sqrt_()
            else:
                avg = sq.sqrt()
            avg = avg.add_(self.scalar(eps, p))
            neg_lr = self.scalar(-lr, p)
            if not some:
                p.addcdiv_(g * neg_lr, avg)
                continue
            buf.mul_(self.scalar(momentum, p)).addcdiv_(g, avg)
            if every:
                p.addcmul_(buf, neg_lr)
            else:  # jobs with and without momentum: each takes torch's branch for its own
                with_momentum = self.scalar(momentum, p) > 0
                p.copy_(torch.where(with_momentum, p.addcmul(buf, neg_lr), p.addcdiv(g * neg_lr, avg)))


class StackedNAdam(StackedOptimizer):
    state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        # torch keeps this running product in float32, one per parameter (all equal)
        self.mu_product = torch.ones_like(self.h["lr"], dtype=torch.float32)

    def keep(self, index):
        super().keep(index)
        self.mu_product = self.mu_product[index]

    def job_state(self, k):
        return [{**entry, "mu_product": self.mu_product[k].clone()} for entry in super().job_state(k)]

    def update(self, lr, grads):
        beta1, beta2, eps, decay = self.h["beta1"], self.h["beta2"], self.h["eps"], self.h["momentum_decay"]
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        bias2 = 1 - beta2**self.steps
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (self.steps * decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((self.steps + 1) * decay)))
        self.mu_product.mul_(mu.float())
        product = self.mu_product.double()
        grad_step = -lr * (1.0 - mu) / (1.0 - product)
        avg_step = (-lr * mu_next) / (1.0 - product * mu_next)
        for p, g, m, v in zip(self.params, grads, self.state["exp_avg"], self.state["exp_avg_sq"]):
            if self.flags["decoupled_weight_decay"] and wd is not None:
                p.mul_(self.scalar(1 - lr * wd, p))
            elif not self.flags["decoupled_weight_decay"]:
                g = self.decayed(g, p, wd)
            m.lerp_(g, self.scalar(1 - beta1, p))
            v.mul_(self.scalar(beta2, p)).addcmul_(g * self.scalar(1 - beta2, p), g)
            denom = v.div(self.scalar(bias2, p)).sqrt().add_(self.scalar(eps, p))
            p.addcdiv_(g * self.scalar(grad_step, p), denom)
            p.addcdiv_(m * self.scalar(avg_step, p), denom)


class StackedAdadelta(StackedOptimizer):
    state_keys = ("square_avg", "acc_delta")

    def update(self, lr, grads):
        rho, eps = self.h["rho"], self.h["eps"]
        wd = self.h["weight_decay"] if self.any("weight_decay") else None
        for p, g, sq, acc in zip(self.params, grads, self.state["square_avg"], self.state["acc_delta"]):
            g = self.decayed(g, p, wd)
            sq.mul_(self.scalar(rho, p)).addcmul_(g * self.scalar(1 - rho, p), g)
            std = sq.add(self.scalar(eps, p)).sqrt_()
            delta = acc.add(self.scalar(eps, p)).sqrt_().div_(std).mul_(g)
            acc.mul_(self.scalar(rho, p)).addcmul_(delta * self.scalar(1 - rho, p), delta)
            p.addcmul_(delta, self.scalar(-lr, p))


STACKED = {
    torch.optim.SGD: StackedSGD,
    torch.optim.Adam: StackedAdam,
    torch.optim.AdamW: StackedAdam,
    torch.optim.Adagrad: StackedAdagrad,
    torch.optim.RMSprop: StackedRMSprop,
    torch.optim.NAdam: StackedNAdam,
    torch.optim.Adadelta: StackedAdadelta,
}


def stacked_optimizer(params: list[torch.nn.Parameter], optimizers: list[torch.optim.Optimizer]):
    """The stacked counterpart of the jobs' torch optimizers (one class, one param group each)."""
    kind = type(optimizers[0])
    if kind not in STACKED or any(type(o) is not kind for o in optimizers):
        raise ValueError(f"no stacked implementation of {kind.__name__} for these jobs")
    if any(len(o.param_groups) != 1 for o in optimizers):
        raise ValueError("stacked optimizers take one parameter group per job")
    return STACKED[kind](params, [o.param_groups[0] for o in optimizers])
