"""One-line warnings when trainer.precision or trainer.compile is slower here (problem 11)."""

from __future__ import annotations

import torch
from conftest import train

from dlrun.report.runlog import LOG_NAME
from dlrun.train import speed_check
from dlrun.train.speed_check import slowdown_warning, step_seconds

CPU = torch.device("cpu")


def test_the_rule_warns_only_when_clearly_slower():
    assert slowdown_warning("32", 1e-3, 1e-1, CPU) is None
    assert slowdown_warning("bf16", 1e-3, 1.1e-3, CPU) is None  # within the margin
    warning = slowdown_warning("fp16", 1e-3, 1e-2, CPU)
    assert warning.startswith("trainer.precision=fp16 trains this model 10.0x slower than fp32")
    assert warning.endswith("use trainer.precision=32")


def test_timing_leaves_the_model_and_the_random_state_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    state = torch.get_rng_state()
    seconds = step_seconds(model, x, y, torch.nn.functional.cross_entropy, ("32", "bf16"), CPU)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), state)


def test_a_run_in_a_slower_precision_says_so(run_dir, capsys, monkeypatch):
    """Timings injected (tests never time): bf16 measured 10x slower -> one warning line,
    on the terminal and in dlrun.log."""
    monkeypatch.setattr(speed_check, "step_seconds", lambda *args: [1e-3, 1e-2])
    from dlrun.report.runlog import logged_to

    with logged_to(run_dir):
        train(run_dir, "trainer.precision=bf16", "trainer.epochs=1", "data.n_train=100",
              "diagnose=off")
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "trainer.precision=bf16 trains" in line]
    assert len(warnings) == 1 and warnings[0].startswith("dlrun: warning: ")
    assert warnings[0] in (run_dir / LOG_NAME).read_text()
    monkeypatch.setattr(speed_check, "step_seconds", lambda *args: [1e-3, 1e-3])
    train(run_dir.parent / "same", "trainer.precision=bf16", "trainer.epochs=1",
          "data.n_train=100", "diagnose=off")
    assert "trainer.precision" not in capsys.readouterr().err


def test_compiling_is_judged_on_the_first_epoch_after_compilation():
    """A compiled step slower than an eager one warns once, on the epoch after the one that
    paid for compiling (timings injected)."""
    from dlrun.records import EpochRow
    from dlrun.train.speed_check import SpeedCheck, compile_warning

    assert compile_warning(1.1e-3, 1e-3, 2) is None
    assert compile_warning(3e-3, 1e-3, 2).startswith("trainer.compile=true: a compiled training step took 3.00 ms in epoch 2, 3.0x")
    check = SpeedCheck.__new__(SpeedCheck)
    check.eager_s = 1e-3
    slow = EpochRow(epoch=2, steps=10, step_time_s=0.03)
    assert check.after_epoch(EpochRow(epoch=1, steps=10, step_time_s=5.0), 1) is None  # compiling
    assert "use trainer.compile=false" in check.after_epoch(slow, 1)
    assert check.after_epoch(EpochRow(epoch=3, steps=10, step_time_s=0.03), 1) is None  # once
    check.eager_s = None  # no eager timing (not compiled, or another batch size)
    assert check.after_epoch(slow, 1) is None


def test_eager_steps_are_timed_on_a_copy():
    from dlrun.train.speed_check import eager_step_seconds

    model = torch.nn.Linear(8, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    seconds = eager_step_seconds(model, optimizer, x, y, torch.nn.functional.cross_entropy, "32", CPU)
    assert seconds > 0 and not optimizer.state
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
