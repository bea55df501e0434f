"""Each schedule's learning-rate trajectory against its definition, stepped as the loop steps it."""

import math

import pytest
import torch
from conftest import compose, train

from dlrun.config import validate
from dlrun.data.batches import shuffled_batches, steps_per_epoch
from dlrun.errors import UserError
from dlrun.records import read_rows
from dlrun.train.schedules import build_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")


LR = 0.2
EPOCHS, PER_EPOCH = 6, 4  # schedules stepped per step see 24 steps


def trajectory(*overrides: str, epochs: int = EPOCHS, metrics=None) -> tuple[list[float], str]:
    """The LR before each scheduler step, from the composed `sched` config and a one-parameter SGD."""
    cfg = compose("optim=sgd", f"optim.lr={LR}", f"trainer.epochs={epochs}", *overrides)
    validate(cfg)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim.lr)
    scheduler, interval = build_scheduler(
        cfg.sched, optimizer, steps_per_epoch=PER_EPOCH, epochs=epochs
    )
    count = epochs * (PER_EPOCH if interval == "step" else 1)
    lrs = []
    for t in range(count):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step(*([metrics[t]] if metrics is not None else []))
    return lrs, interval


def cosine(start, end, fraction):
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


def test_constant():
    lrs, interval = trajectory("sched=constant")
    assert interval == "epoch" and lrs == pytest.approx([LR] * EPOCHS)


def test_step():
    lrs, interval = trajectory("sched=step", "sched.step_size=2", "sched.gamma=0.5")
    assert interval == "epoch"
    assert lrs == pytest.approx([LR * 0.5 ** (e // 2) for e in range(EPOCHS)])


def test_exponential():
    lrs, _ = trajectory("sched=exponential", "sched.gamma=0.7")
    assert lrs == pytest.approx([LR * 0.7**e for e in range(EPOCHS)])


def test_cosine_spans_the_run_per_epoch_or_per_step():
    lrs, _ = trajectory("sched=cosine", "sched.eta_min=0.01")
    assert lrs == pytest.approx([cosine(LR, 0.01, e / EPOCHS) for e in range(EPOCHS)])
    lrs, interval = trajectory("sched=cosine", "sched.interval=step")
    total = EPOCHS * PER_EPOCH
    assert interval == "step" and lrs == pytest.approx(
        [cosine(LR, 0.0, t / total) for t in range(total)]
    )


@pytest.mark.parametrize("warmup", ["0.25", "6"])  # a fraction of the 24 steps, or 6 steps
def test_warmup_cosine(warmup):
    lrs, interval = trajectory(
        "sched=warmup_cosine",
        f"sched.warmup={warmup}",
        "sched.start_factor=0.1",
        "sched.eta_min=0.002",
    )
    total, w = EPOCHS * PER_EPOCH, 6
    expected = [
        LR * (0.1 + 0.9 * t / w) if t <= w else cosine(LR, 0.002, (t - w) / (total - w))
        for t in range(total)
    ]
    assert interval == "step" and lrs == pytest.approx(expected)
    assert lrs[w] == pytest.approx(LR) and max(lrs) == pytest.approx(LR)


def test_onecycle():
    lrs, interval = trajectory("sched=onecycle", "sched.pct_start=0.25")
    total = EPOCHS * PER_EPOCH
    peak = (
        round(0.25 * total) - 1
    )  # torch's OneCycleLR reaches max_lr at step pct_start * total - 1
    start, end = LR / 25, LR / 25 / 1e4
    expected = [
        cosine(start, LR, t / peak)
        if t <= peak
        else cosine(LR, end, (t - peak) / (total - 1 - peak))
        for t in range(total)
    ]
    assert interval == "step" and lrs == pytest.approx(expected)
    assert lrs[peak] == pytest.approx(LR) and lrs[-1] == pytest.approx(end)


def test_plateau_cuts_the_lr_after_patience_epochs_without_improvement():
    losses = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    lrs, interval = trajectory(
        "sched=plateau", "sched.patience=2", "sched.factor=0.1", metrics=losses
    )
    # epoch 2 is the best; epochs 3 and 4 do not improve (patience 2); the cut follows epoch 5's step
    assert interval == "epoch"
    assert lrs == pytest.approx([LR, LR, LR, LR, LR, LR * 0.1])


def test_the_loop_steps_per_step_schedules_and_logs_the_lr(run_dir):
    # 300 examples in batches of 64: 5 steps per epoch, so epoch e starts at step 5 * (e - 1)
    train(
        run_dir,
        "sched=onecycle",
        "optim=sgd",
        f"optim.lr={LR}",
        "trainer.epochs=4",
        "data.n_train=300",
        "model=linear",
        "trainer.checkpoint=false",
        "diagnose=off",
        "trainer.threads=1",
    )
    rows = read_rows(run_dir / "metrics.jsonl")
    total, peak = 20, round(0.3 * 20) - 1
    start, end = LR / 25, LR / 25 / 1e4

    def onecycle(t):
        return (
            cosine(start, LR, t / peak)
            if t <= peak
            else cosine(LR, end, (t - peak) / (total - 1 - peak))
        )

    assert [r.steps for r in rows] == [5] * 4
    assert [r.lr for r in rows] == pytest.approx([onecycle(5 * e) for e in range(4)])


def test_the_loop_feeds_plateau_the_validation_loss(run_dir):
    # epoch 1 improves on nothing; after that a 99% threshold makes no epoch an improvement,
    # so with patience 0 every later epoch halves the LR
    train(
        run_dir,
        "sched=plateau",
        "sched.patience=0",
        "sched.threshold=0.99",
        "sched.factor=0.5",
        "optim=sgd",
        f"optim.lr={LR}",
        "trainer.epochs=3",
        "data.n_train=300",
        "model=linear",
        "trainer.checkpoint=false",
        "diagnose=off",
        "trainer.threads=1",
    )
    assert [r.lr for r in read_rows(run_dir / "metrics.jsonl")] == pytest.approx(
        [LR, LR, LR / 2]
    )


def test_steps_per_epoch_matches_the_batches():
    assert steps_per_epoch(300, 64) == 5
    assert steps_per_epoch(300, None) == 1
    assert steps_per_epoch(300, 1000) == 1
    x, y, generator = torch.zeros(300, 1), torch.zeros(300), torch.Generator()
    for drop_last in (False, True):
        drawn = len(list(shuffled_batches(x, y, 64, generator, drop_last)))
        assert steps_per_epoch(300, 64, drop_last) == drawn == (4 if drop_last else 5)


def test_plateau_per_step_is_a_user_error():
    with pytest.raises(UserError, match="sched.interval=epoch"):
        trajectory("sched=plateau", "sched.interval=step")


def test_a_warmup_longer_than_the_run_is_a_user_error():
    with pytest.raises(UserError, match="sched.warmup"):
        trajectory("sched=warmup_cosine", "sched.warmup=500")
