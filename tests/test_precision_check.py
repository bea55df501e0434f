"""The one-line warning when trainer.precision is slower than fp32 here (problem 11)."""

from __future__ import annotations

import torch
from conftest import train

from dlrun.report.runlog import LOG_NAME
from dlrun.train import precision_check
from dlrun.train.precision_check import slowdown_warning, step_seconds

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
    monkeypatch.setattr(precision_check, "step_seconds", lambda *args: [1e-3, 1e-2])
    from dlrun.report.runlog import logged_to

    with logged_to(run_dir):
        train(run_dir, "trainer.precision=bf16", "trainer.epochs=1", "data.n_train=100",
              "diagnose=off")
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "trainer.precision=bf16 trains" in line]
    assert len(warnings) == 1 and warnings[0].startswith("dlrun: warning: ")
    assert warnings[0] in (run_dir / LOG_NAME).read_text()
    monkeypatch.setattr(precision_check, "step_seconds", lambda *args: [1e-3, 1e-3])
    train(run_dir.parent / "same", "trainer.precision=bf16", "trainer.epochs=1",
          "data.n_train=100", "diagnose=off")
    assert "trainer.precision" not in capsys.readouterr().err
