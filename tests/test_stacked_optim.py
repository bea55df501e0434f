"""Per-job optimizers against torch.optim: K jobs with different hyperparameters against K
separate torch optimizers fed the same gradients, with a changing learning rate: bit for bit
against torch's for-loop implementation, within float rounding against its fused kernels."""

from __future__ import annotations

import pytest
import torch

from dlrun.train.stacked.algorithms import stacked_optimizer

# one entry per optim= option (conf/optim/*.yaml) and the flags they switch; each row is one
# job's hyperparameters, chosen to differ wherever the optimizer has a knob
CASES = {
    "sgd": (torch.optim.SGD, [dict(lr=0.1), dict(lr=0.05, weight_decay=1e-2)]),
    "momentum": (torch.optim.SGD, [dict(lr=0.01, momentum=0.9), dict(lr=0.02, momentum=0.5, dampening=0.1),
                                   dict(lr=0.03, momentum=0.0, dampening=0.3, weight_decay=1e-3)]),
    "nesterov": (torch.optim.SGD, [dict(lr=0.01, momentum=0.9, nesterov=True),
                                   dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=1e-2)]),
    "adagrad": (torch.optim.Adagrad, [dict(lr=0.01), dict(lr=0.1, lr_decay=0.01, eps=1e-6,
                                                          initial_accumulator_value=0.1, weight_decay=1e-3)]),
    "rmsprop": (torch.optim.RMSprop, [dict(lr=1e-3), dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-3),
                                      dict(lr=3e-3, momentum=0.9)]),
    "rmsprop_centered": (torch.optim.RMSprop, [dict(lr=1e-3, centered=True, momentum=0.5),
                                               dict(lr=1e-2, centered=True, alpha=0.8)]),
    "adam": (torch.optim.Adam, [dict(lr=1e-3), dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)]),
    "adam_amsgrad": (torch.optim.Adam, [dict(lr=1e-3, amsgrad=True), dict(lr=3e-3, amsgrad=True, betas=(0.5, 0.9))]),
    "adamw": (torch.optim.AdamW, [dict(lr=1e-3), dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=0.1)]),
    "nadam": (torch.optim.NAdam, [dict(lr=2e-3), dict(lr=1e-2, betas=(0.8, 0.99), momentum_decay=1e-2,
                                                      weight_decay=1e-3)]),
    "adadelta": (torch.optim.Adadelta, [dict(lr=1.0), dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=1e-2)]),
}
SHAPES = [(6, 5), (6,), (3, 2, 4)]  # a weight, a bias, a conv kernel
STEPS = 12


def run_both(kind, jobs, **torch_kwargs):
    """Train the jobs stacked and one by one on the same gradients; the stacked weights and
    the torch ones, and each job's state in torch's format against torch's own."""
    gen = torch.Generator().manual_seed(0)
    start = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in jobs]
    grads = [[[torch.randn(s, generator=gen) for s in SHAPES] for _ in jobs] for _ in range(STEPS)]
    solo = [[torch.nn.Parameter(t.clone()) for t in weights] for weights in start]
    solo_opts = [kind(params, **knobs, **torch_kwargs) for params, knobs in zip(solo, jobs)]
    stacked = [torch.nn.Parameter(torch.stack([w[i] for w in start])) for i in range(len(SHAPES))]
    opt = stacked_optimizer(stacked, solo_opts)
    for step in range(STEPS):
        factor = 1.0 - step / (2 * STEPS)  # a schedule: every job's lr changes each step
        for k, (params, o) in enumerate(zip(solo, solo_opts)):
            o.param_groups[0]["lr"] = jobs[k].get("lr") * factor
            for p, g in zip(params, grads[step][k]):
                p.grad = g.clone()
            o.step()
        for i, p in enumerate(stacked):
            p.grad = torch.stack([grads[step][k][i] for k in range(len(jobs))])
        opt.step(torch.tensor([j["lr"] * factor for j in jobs], dtype=torch.float64))
    return solo, solo_opts, stacked, opt


@pytest.mark.parametrize("name", sorted(CASES))
def test_k_jobs_equal_k_torch_optimizers_for_loop_implementation_bit_for_bit(name):
    kind, jobs = CASES[name]
    solo, solo_opts, stacked, opt = run_both(kind, jobs, foreach=False)
    for k in range(len(jobs)):
        for i, p in enumerate(solo[k]):
            torch.testing.assert_close(stacked[i].detach()[k], p.detach(), rtol=0, atol=0)
        torch_state = [solo_opts[k].state[p] for p in solo[k]]
        for ours, theirs in zip(opt.job_state(k), torch_state):
            assert set(ours) == set(theirs), name
            for key in theirs:
                torch.testing.assert_close(ours[key], theirs[key].reshape(ours[key].shape),
                                           rtol=0, atol=0, check_dtype=True)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adam", "adamw"])
def test_one_job_matches_torchs_fused_kernel_within_float_rounding(name):
    """What a solo run uses on the CPU where torch has it (dlrun.train.optimizers)."""
    kind, jobs = CASES[name]
    solo, _, stacked, _ = run_both(kind, jobs[:1], fused=True)
    for i, p in enumerate(solo[0]):
        torch.testing.assert_close(stacked[i].detach()[0], p.detach(), rtol=1e-5, atol=1e-6)


def test_a_job_state_loads_into_its_torch_optimizer_and_steps_on_identically():
    """What trainer.resume does with a stacked job's checkpoint."""
    kind, jobs = CASES["adam"]
    solo, solo_opts, stacked, opt = run_both(kind, jobs, foreach=False)
    fresh = [torch.nn.Parameter(stacked[i].detach()[1].clone()) for i in range(len(SHAPES))]
    resumed = kind(fresh, **jobs[1], foreach=False)
    resumed.load_state_dict({"state": dict(enumerate(opt.job_state(1))),
                             "param_groups": solo_opts[1].state_dict()["param_groups"]})
    for params, o in ((fresh, resumed), (solo[1], solo_opts[1])):
        for p in params:
            p.grad = torch.ones_like(p)
        o.step()
    for a, b in zip(fresh, solo[1]):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)


def test_dropping_a_job_keeps_the_others_updates():
    kind, jobs = CASES["momentum"]
    _, _, stacked, opt = run_both(kind, jobs, foreach=False)
    index = torch.tensor([0, 2])
    stacked = [torch.nn.Parameter(p.detach()[index]) for p in stacked]
    opt.keep(index, stacked)
    before = [p.detach().clone() for p in stacked]
    for p in stacked:
        p.grad = torch.ones_like(p)
    opt.step(torch.tensor([0.01, 0.03], dtype=torch.float64))
    assert all(p.shape[0] == 2 for p in stacked)
    assert all(not torch.equal(a, b) for a, b in zip(before, stacked))
