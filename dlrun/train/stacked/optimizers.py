"""Per-job optimizers: torch.optim's update rules on stacked weights, hyperparameters per job.
This is their shared part; the ten `optim=` options' rules are in algorithms.py.

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
        """What depends on the jobs only, computed once (and again when jobs leave), not per
        step: which scalars are non-zero for some job, and the constants in the weights' dtype."""
        self.nonzero = {key: bool((value != 0).any()) for key, value in self.h.items()}
        self.positive = {key: (bool((value > 0).any()), bool((value > 0).all()))
                         for key, value in self.h.items()}
        self.dtype = self.params[0].dtype
        self.const = self.rounded(**self.constants())

    def constants(self) -> dict[str, torch.Tensor]:
        """Per-job values that do not change between steps (float64, [K])."""
        return {}

    def rounded(self, **values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-job values as torch hands them to a kernel as scalars: rounded to the weights' dtype."""
        return {key: value.to(self.dtype) for key, value in values.items()}

    def initial(self, key: str, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(p)

    @staticmethod
    def per_job(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A rounded per-job value shaped (K, 1, ...) to broadcast over each job's rows of `like`."""
        return value.view(-1, *[1] * (like.dim() - 1))

    def scalar(self, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """`per_job` of a float64 value, rounded first (for values used once a step)."""
        return self.per_job(value.to(like.dtype), like)

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

    def keep(self, index: torch.Tensor, params: list[torch.nn.Parameter]) -> None:
        """Keep only the jobs at `index`; `params` are the model's parameters sliced likewise."""
        self.params = list(params)
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

    def decayed(self, g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """grad.add(param, alpha=weight_decay), skipped when no job decays."""
        if not self.nonzero["weight_decay"]:
            return g
        return torch.addcmul(g, p, self.per_job(self.const["weight_decay"], p))
