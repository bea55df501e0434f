"""The update rules of the ten `optim=` options on stacked weights (see optimizers.py for how
each follows torch's single-tensor implementation), and the factory that picks one."""

from __future__ import annotations

import torch

from dlrun.train.stacked.optimizers import StackedOptimizer


class StackedSGD(StackedOptimizer):
    """torch.optim.SGD: optim=gd, sgd, momentum, nesterov."""

    state_keys = ("momentum_buffer",)
    counts_steps = False

    def has_state(self, key, k):
        return bool(self.h["momentum"][k] != 0)

    def constants(self):
        # torch ignores dampening without momentum: a job at momentum 0 gets buf = g exactly
        damped = 1 - torch.where(self.h["momentum"] != 0, self.h["dampening"], 0.0)
        return {"weight_decay": self.h["weight_decay"], "momentum": self.h["momentum"], "damped": damped}

    def update(self, lr, grads):
        c, v = {**self.const, **self.rounded(neg_lr=-lr)}, self.per_job
        for p, g, buf in zip(self.params, grads, self.state["momentum_buffer"]):
            g = self.decayed(g, p)
            if self.nonzero["momentum"]:
                if self.steps == 1:
                    buf.copy_(g)
                else:
                    buf.mul_(v(c["momentum"], p)).addcmul_(g, v(c["damped"], p))
                g = torch.addcmul(g, buf, v(c["momentum"], p)) if self.flags["nesterov"] else buf
            p.addcmul_(g, v(c["neg_lr"], p))


class StackedAdam(StackedOptimizer):
    """torch.optim.Adam and AdamW (decoupled weight decay)."""

    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        if not self.flags["amsgrad"]:
            del self.state["max_exp_avg_sq"]

    def constants(self):
        beta1, beta2 = self.h["beta1"], self.h["beta2"]
        return {"weight_decay": self.h["weight_decay"], "avg": 1 - beta1, "beta2": beta2,
                "sq": 1 - beta2, "eps": self.h["eps"]}

    def update(self, lr, grads):
        decoupled = self.flags["decoupled_weight_decay"]
        c = {**self.const, **self.rounded(
            neg_step=-(lr / (1 - self.h["beta1"] ** self.steps)),
            bias2_sqrt=(1 - self.h["beta2"] ** self.steps) ** 0.5,
            **({"decay": 1 - lr * self.h["weight_decay"]} if decoupled else {}))}
        v = self.per_job
        maxima = self.state.get("max_exp_avg_sq", [None] * len(self.params))
        for p, g, m, sq, vmax in zip(self.params, grads, self.state["exp_avg"],
                                     self.state["exp_avg_sq"], maxima):
            if decoupled and self.nonzero["weight_decay"]:
                p.mul_(v(c["decay"], p))
            elif not decoupled:
                g = self.decayed(g, p)
            m.lerp_(g, v(c["avg"], p))
            sq.mul_(v(c["beta2"], p)).addcmul_(g * v(c["sq"], p), g)
            if vmax is not None:
                torch.maximum(vmax, sq, out=vmax)
            denom = ((sq if vmax is None else vmax).sqrt() / v(c["bias2_sqrt"], p)).add_(v(c["eps"], p))
            p.addcdiv_(m * v(c["neg_step"], p), denom)


class StackedAdagrad(StackedOptimizer):
    state_keys = ("sum",)

    def initial(self, key, p):
        return self.scalar(self.h["initial_accumulator_value"], p).expand_as(p).clone()

    def constants(self):
        return {"weight_decay": self.h["weight_decay"], "eps": self.h["eps"]}

    def update(self, lr, grads):
        c = {**self.const, **self.rounded(neg_clr=-(lr / (1 + (self.steps - 1) * self.h["lr_decay"])))}
        v = self.per_job
        for p, g, total in zip(self.params, grads, self.state["sum"]):
            g = self.decayed(g, p)
            total.addcmul_(g, g)
            std = total.sqrt().add_(v(c["eps"], p))
            p.addcdiv_(g * v(c["neg_clr"], p), std)


class StackedRMSprop(StackedOptimizer):
    state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        if not self.flags["centered"]:
            del self.state["grad_avg"]

    def has_state(self, key, k):
        return key != "momentum_buffer" or bool(self.h["momentum"][k] > 0)

    def constants(self):
        return {"weight_decay": self.h["weight_decay"], "alpha": self.h["alpha"],
                "rest": 1 - self.h["alpha"], "eps": self.h["eps"], "momentum": self.h["momentum"]}

    def update(self, lr, grads):
        c, v = {**self.const, **self.rounded(neg_lr=-lr)}, self.per_job
        some, every = self.positive["momentum"]
        averages = self.state.get("grad_avg", [None] * len(self.params))
        for p, g, sq, buf, ga in zip(self.params, grads, self.state["square_avg"],
                                     self.state["momentum_buffer"], averages):
            g = self.decayed(g, p)
            sq.mul_(v(c["alpha"], p)).addcmul_(g * v(c["rest"], p), g)
            if ga is not None:
                ga.lerp_(g, v(c["rest"], p))
                avg = sq.addcmul(-ga, ga).sqrt_()
            else:
                avg = sq.sqrt()
            avg = avg.add_(v(c["eps"], p))
            neg_lr = v(c["neg_lr"], p)
            if not some:
                p.addcdiv_(g * neg_lr, avg)
                continue
            buf.mul_(v(c["momentum"], p)).addcdiv_(g, avg)
            if every:
                p.addcmul_(buf, neg_lr)
            else:  # jobs with and without momentum: each takes torch's branch for its own
                with_momentum = v(c["momentum"], p) > 0
                p.copy_(torch.where(with_momentum, p.addcmul(buf, neg_lr), p.addcdiv(g * neg_lr, avg)))


class StackedNAdam(StackedOptimizer):
    state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, groups):
        super().__init__(params, groups)
        # torch keeps this running product in float32, one per parameter (all equal)
        self.mu_product = torch.ones_like(self.h["lr"], dtype=torch.float32)

    def keep(self, index, params):
        super().keep(index, params)
        self.mu_product = self.mu_product[index]

    def job_state(self, k):
        return [{**entry, "mu_product": self.mu_product[k].clone()} for entry in super().job_state(k)]

    def constants(self):
        return {"weight_decay": self.h["weight_decay"], "avg": 1 - self.h["beta1"],
                "beta2": self.h["beta2"], "sq": 1 - self.h["beta2"], "eps": self.h["eps"]}

    def update(self, lr, grads):
        beta1, decay, wd = self.h["beta1"], self.h["momentum_decay"], self.h["weight_decay"]
        decoupled = self.flags["decoupled_weight_decay"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (self.steps * decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((self.steps + 1) * decay)))
        self.mu_product.mul_(mu.float())
        product = self.mu_product.double()
        c = {**self.const, **self.rounded(
            bias2=1 - self.h["beta2"] ** self.steps,
            grad_step=-lr * (1.0 - mu) / (1.0 - product),
            avg_step=(-lr * mu_next) / (1.0 - product * mu_next),
            **({"decay": 1 - lr * wd} if decoupled else {}))}
        v = self.per_job
        for p, g, m, sq in zip(self.params, grads, self.state["exp_avg"], self.state["exp_avg_sq"]):
            if decoupled and self.nonzero["weight_decay"]:
                p.mul_(v(c["decay"], p))
            elif not decoupled:
                g = self.decayed(g, p)
            m.lerp_(g, v(c["avg"], p))
            sq.mul_(v(c["beta2"], p)).addcmul_(g * v(c["sq"], p), g)
            denom = sq.div(v(c["bias2"], p)).sqrt().add_(v(c["eps"], p))
            p.addcdiv_(g * v(c["grad_step"], p), denom)
            p.addcdiv_(m * v(c["avg_step"], p), denom)


class StackedAdadelta(StackedOptimizer):
    state_keys = ("square_avg", "acc_delta")

    def constants(self):
        return {"weight_decay": self.h["weight_decay"], "rho": self.h["rho"],
                "rest": 1 - self.h["rho"], "eps": self.h["eps"]}

    def update(self, lr, grads):
        c, v = {**self.const, **self.rounded(neg_lr=-lr)}, self.per_job
        for p, g, sq, acc in zip(self.params, grads, self.state["square_avg"], self.state["acc_delta"]):
            g = self.decayed(g, p)
            sq.mul_(v(c["rho"], p)).addcmul_(g * v(c["rest"], p), g)
            std = sq.add(v(c["eps"], p)).sqrt_()
            delta = acc.add(v(c["eps"], p)).sqrt_().div_(std).mul_(g)
            acc.mul_(v(c["rho"], p)).addcmul_(delta * v(c["rest"], p), delta)
            p.addcmul_(delta, v(c["neg_lr"], p))


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
