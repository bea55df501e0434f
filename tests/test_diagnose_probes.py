"""The probes on real (small) models: they hold their budget, work on every layer (falling
back where a layer has no double backward), and never cost a run its diagnosis."""

from __future__ import annotations

import json
import time

import pytest
import torch
from conftest import compose, train
from torch import nn

from dlrun.diagnose import hessian, probes
from dlrun.diagnose.budget import Budget, Deadline
from dlrun.diagnose.optimum import own_optimum
from dlrun.diagnose.references import expressible, fit_lbfgs
from dlrun.diagnose.run import gather_evidence
from dlrun.records import EpochRow


def test_a_deadline_refuses_a_step_that_would_end_past_it():
    assert not Deadline(time.perf_counter() - 1).allows()
    deadline = Deadline(time.perf_counter() + 0.05)
    assert deadline.allows()
    time.sleep(0.03)  # the first unit took 30 ms: another would end past the deadline
    assert not deadline.allows() and deadline.refused
    assert Deadline(None).allows() and not Deadline(None).passed


def test_the_budget_shares_what_is_left_between_the_iterative_probes():
    budget = Budget(10.0)
    # the probes aim at 90% of it, and the references may take 40% of that
    assert budget.deadline("references").at - time.perf_counter() == pytest.approx(3.6, abs=0.1)
    assert budget.deadline("trivial").at is None  # one pass: nothing to stop
    assert Budget(None).deadline("references").at is None


def _slow(model: nn.Module, seconds: float) -> nn.Module:
    """A forward that takes `seconds`: a probe on it must stop at its deadline."""

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            time.sleep(seconds)
            return self.inner(x)

    return Slow()


def test_iterative_probes_stop_at_their_deadline():
    torch.manual_seed(0)
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    fit_lbfgs(nn.Linear(3, 1), nn.functional.mse_loss, x, y, 1)  # torch.optim's first use imports
    model = _slow(nn.Linear(3, 1), 0.01)
    started = time.perf_counter()
    done = fit_lbfgs(model, nn.functional.mse_loss, x, y, 1000, deadline=Deadline(started + 0.3),
                     chunk=1)
    assert 0 < done < 1000 and time.perf_counter() - started < 0.45
    a = torch.randn(41, 41)
    hessian.lanczos(lambda v: (a + a.T) @ v, 41, 3, device="cpu", dtype=torch.float32)  # eigh's first use

    def slow_product(v):  # Hessian products are backward passes: the slow part
        time.sleep(0.01)
        return (a + a.T) @ v

    started = time.perf_counter()
    eig = hessian.lanczos(slow_product, 41, 40, device="cpu", dtype=torch.float32,
                          deadline=Deadline(started + 0.1))
    assert eig["cut_short"] and eig["products"] >= 2 and time.perf_counter() - started < 0.3


class Square(torch.autograd.Function):
    """x^2 with a backward that has no derivative of its own (as a custom kernel may)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def test_hessian_products_fall_back_to_finite_differences_without_a_double_backward():
    torch.manual_seed(0)
    x, y = torch.randn(128, 3), torch.randn(128, 2)
    first, second = nn.Linear(3, 4), nn.Linear(4, 2)

    def loss(custom: bool):
        def f(params):
            h = torch.nn.functional.linear(x, params["w1"], params["b1"])
            h = Square.apply(h) if custom else h * h
            out = torch.nn.functional.linear(h, params["w2"], params["b2"])
            return torch.nn.functional.mse_loss(out, y)
        return f

    params = {"w1": first.weight, "b1": first.bias, "w2": second.weight, "b2": second.bias}
    exact = hessian.HessianProducts(loss(False), params)
    fallback = hessian.HessianProducts(loss(True), params)
    v = torch.randn(sum(p.numel() for p in params.values()))
    assert torch.allclose(fallback(v), exact(v), rtol=0.05, atol=0.05 * exact(v).abs().max())
    assert (exact.method, fallback.method) == ("double_backward", "finite_difference")


def test_which_references_an_architecture_can_express():
    def mlp(*widths):
        layers, sizes = [], [2, *widths, 3]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    assert expressible("linear", mlp(64, 64), 64) and expressible("mlp[64]", mlp(64, 64), 64)
    assert not expressible("linear", mlp(1, 256), 64)  # one projection of a 2-D input
    assert not expressible("mlp[64]", mlp(1, 256), 64)
    assert expressible("linear", mlp(), 64) and not expressible("mlp[64]", mlp(), 64)
    assert expressible("linear", nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten()), 64) is None


def test_the_own_optimum_of_a_line_is_least_squares(one_thread):
    from dlrun.data import sine

    data = sine(seed=0, val_fraction=0.2, test_fraction=0.2)
    torch.manual_seed(0)
    best = torch.linalg.lstsq(torch.cat([data.x_train, torch.ones(len(data.x_train), 1)], 1),
                              data.y_train).solution
    x1 = torch.cat([data.x_train, torch.ones(len(data.x_train), 1)], 1)
    floor = float(nn.functional.mse_loss(x1 @ best, data.y_train))
    result = own_optimum(lambda: nn.Linear(1, 1), nn.functional.mse_loss, data, bar=0.2,
                         max_examples=4096, iterations=50, seed=0)
    assert result.train_loss == pytest.approx(floor, rel=1e-3) and not result.cut_short
    hurried = own_optimum(lambda: _slow(nn.Linear(1, 1), 0.02), nn.functional.mse_loss, data,
                          bar=0.2, max_examples=4096, iterations=50, seed=0,
                          deadline=Deadline(time.perf_counter() + 0.1))
    assert hurried.cut_short


def test_gradients_through_time_vanish_in_a_plain_rnn_on_long_sequences():
    torch.manual_seed(0)

    class Last(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.rnn, self.head = cell, nn.Linear(16, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    x, y = torch.rand(32, 100, 2), torch.rand(32, 1)
    rnn = probes.time_gradients(Last(nn.RNN(2, 16, batch_first=True)), nn.functional.mse_loss, x, y)
    lstm = probes.time_gradients(Last(nn.LSTM(2, 16, batch_first=True)), nn.functional.mse_loss,
                                 x, y)
    assert rnn.steps == 100 and rnn.ratio < 1e-2 and lstm.ratio > rnn.ratio
    assert probes.time_gradients(nn.Linear(2, 1), nn.functional.mse_loss, x[:, 0], y) is None


def test_the_step_size_test_gets_the_learning_rate_of_the_last_epoch():
    cfg = compose("optim=sgd", "optim.lr=30", "sched=plateau")
    rows = [EpochRow(epoch=e, splits={s: {"loss": 1.0} for s in ("train", "val", "test")},
                     lr=lr, batch_loss=1.0, steps=3) for e, lr in [(1, 30.0), (2, 3.0), (3, 0.3)]]
    data = type("D", (), {"test_shift": None})()
    ev = gather_evidence(cfg, nn.Linear(2, 1), data, rows, None)
    assert ev.optimizer.lr == 0.3 and ev.optimizer.configured_lr == 30.0


def test_a_probe_that_raises_becomes_a_finding_and_the_run_keeps_its_files(run_dir, monkeypatch,
                                                                            one_thread):
    def broken(*args, **kwargs):
        raise RuntimeError("derivative for some_fused_kernel is not implemented")

    monkeypatch.setattr(probes, "full_gradient", broken)
    train(run_dir, "experiment=optimization", "trainer.epochs=3", "diagnose=full",
          "diagnose.probe_budget=100")
    diagnosis = json.loads((run_dir / "diagnosis.json").read_text())
    failed = [f for f in diagnosis["findings"] if f["code"] == "probe_failed"]
    assert failed and failed[0]["evidence"]["probe"] == "critical_point"
    assert "not implemented" in failed[0]["evidence"]["error"]
    assert diagnosis["verdict"] == "optimization"  # decided with what it had
    assert json.loads((run_dir / "summary.json").read_text())["verdict"] == "optimization"
