"""The LR range test: its suggestion lies where short training runs do best, it makes none
from noise, and `mode=lr_find` records it.

Where the right learning rate is known: each sweep test trains the same problem briefly at
a grid of learning rates (real runs, in-process) and checks that a run as short at the
suggested LR closes nearly as much of the gap to the untrained loss as the best of them.
"""

import json
import math

import numpy as np
import pytest
import torch
from conftest import FAST, compose, train

from dlrun.build import build, build_loss
from dlrun.errors import UserError
from dlrun.lr_find import command_with_lr
from dlrun.runner import run_job
from dlrun.train.lr_range import lr_range_test, lr_schedule
from dlrun.train.lr_suggest import RULE, suggest

pytestmark = pytest.mark.usefixtures("one_thread")


# softmax regression on digits with plain SGD: too small an LR does nothing, around 0.1-1 it
# learns, and well above 10 the loss blows up
PROBLEM = [
    "model=linear",
    "data=digits",
    "data.flat=true",
    "optim=sgd",
    "diagnose=off",
    "trainer.threads=1",
]


def test_suggestion_lies_on_the_descending_part_of_the_curve():
    cfg = compose(*PROBLEM)
    data, model, optimizer, _, _ = build(cfg, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    result = lr_range_test(
        model,
        optimizer,
        data.x_train,
        data.y_train,
        build_loss(cfg, data, model),
        batch_size=64,
        generator=generator,
        start_lr=1e-4,
        end_lr=1e3,
        steps=150,
    )
    assert result.diverged_at is not None  # lr 1e3 is far too large
    smooth = np.asarray(result.smoothed)
    i, low = result.suggestion_index, result.min_index
    assert result.suggestion == result.lrs[i]
    assert 0 < i < low  # before the minimum ...
    assert smooth[i] < smooth[0] - 0.1 and smooth[i] > smooth[low]  # ... partway down ...
    assert smooth[i + 3] < smooth[i - 3]  # ... where the loss is falling
    assert 1e-2 < result.suggestion < 10  # where SGD on this problem learns
    for key, value in model.state_dict().items():  # the model is left as it was
        assert torch.equal(value, before[key])


def test_training_at_the_suggestion_beats_the_start_of_the_range():
    cfg = compose(*PROBLEM)
    data, model, optimizer, _, _ = build(cfg, torch.device("cpu"))
    loss = build_loss(cfg, data, model)
    result = lr_range_test(
        model,
        optimizer,
        data.x_train,
        data.y_train,
        loss,
        batch_size=64,
        generator=torch.Generator().manual_seed(0),
        start_lr=1e-4,
        end_lr=1e3,
        steps=150,
    )

    def loss_after_one_epoch(lr):
        trial = torch.nn.Linear(64, 10)
        trial.load_state_dict({k.split(".")[-1]: v for k, v in model.state_dict().items()})
        sgd = torch.optim.SGD(trial.parameters(), lr=lr)
        for start in range(0, len(data.x_train), 64):
            batch = loss(trial(data.x_train[start : start + 64]), data.y_train[start : start + 64])
            sgd.zero_grad()
            batch.backward()
            sgd.step()
        return loss(trial(data.x_val), data.y_val).item()

    assert loss_after_one_epoch(result.suggestion) < loss_after_one_epoch(1e-4) - 0.5


def test_lr_schedule_is_exponential():
    lrs = lr_schedule(1e-6, 1.0, 7)
    assert lrs == pytest.approx([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_mode_lr_find_writes_the_curve_and_the_command(run_dir):
    overrides = [
        *PROBLEM,
        "mode=lr_find",
        "lr_find.steps=60",
        "lr_find.start_lr=1e-4",
        "lr_find.end_lr=100",
    ]
    returned = run_job(compose(*FAST, *overrides), run_dir=run_dir, overrides=overrides)
    record = json.loads((run_dir / "lr_find.json").read_text())
    assert record["rule"] == RULE
    assert record["steepest_lr"] <= record["suggestion"] < record["min_loss_lr"]
    assert 1e-4 <= record["steepest_lr"] and record["fall"] > record["noise_floor"] > 0
    assert len(record["lrs"]) == len(record["losses"]) == record["steps"] <= 60
    assert returned == pytest.approx(min(record["smoothed"]))
    assert record["command"] == (
        "dlrun model=linear data=digits data.flat=true optim=sgd diagnose=off trainer.threads=1 "
        f"optim.lr={record['suggestion']:.3g}"
    )
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert not (run_dir / "metrics.jsonl").exists()  # nothing was trained for real
    assert math.isfinite(returned)


def test_command_drops_the_mode_and_replaces_the_lr():
    assert (
        command_with_lr(["mode=lr_find", "optim=adam", "optim.lr=0.1", "lr_find.steps=50"], 0.0123)
        == "dlrun optim=adam optim.lr=0.0123"
    )


def test_an_empty_range_is_a_user_error(run_dir):
    with pytest.raises(UserError, match="lr_find.end_lr"):
        run_job(
            compose(*FAST, *PROBLEM, "mode=lr_find", "lr_find.start_lr=1", "lr_find.end_lr=0.1"),
            run_dir=run_dir,
        )


# --- where short runs do best -------------------------------------------------------------


def range_test(cfg, **knobs):
    """The range test on cfg's problem from its initial weights, and that initial training loss
    (every run of a sweep starts from the same weights: `build` seeds them)."""
    data, model, optimizer, _, _ = build(cfg, torch.device("cpu"))
    loss = build_loss(cfg, data, model)
    with torch.no_grad():
        initial = loss(model(data.x_train), data.y_train).item()
    generator = torch.Generator().manual_seed(cfg.trainer.seed)
    batch_size = cfg.trainer.batch_size
    result = lr_range_test(model, optimizer, data.x_train, data.y_train, loss,
                           batch_size=batch_size, generator=generator, **knobs)
    return result, initial


def loss_after_short_run(tmp_path, overrides, lr) -> float:
    run_dir = train(tmp_path / f"lr-{lr:.3g}", *overrides, f"optim.lr={lr}",
                    "diagnose=off", "trainer.checkpoint=false")
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["train_loss"]


def share_of_the_best_gain(tmp_path, overrides, suggestion, grid, initial) -> float:
    """How much of the fall from the untrained loss that the best LR of `grid` achieves a
    run at the suggestion achieves (1: as good as the best, 0: no better than not training)."""
    losses = {lr: loss_after_short_run(tmp_path, overrides, lr) for lr in [*grid, suggestion]}
    return (initial - losses[suggestion]) / (initial - min(losses.values()))


def test_linear_regression_on_diabetes_the_reported_case(tmp_path):
    """`dlrun mode=lr_find model=linear data=diabetes` suggested 2.15e-05, on the flat noisy
    start of its curve; 10 epochs there leave the loss where it started."""
    problem = ["model=linear", "data=diabetes", "trainer.threads=1"]
    overrides = [*problem, "mode=lr_find"]
    run_job(compose(*FAST, *overrides), run_dir=tmp_path / "find", overrides=overrides)
    record = json.loads((tmp_path / "find" / "lr_find.json").read_text())
    _, initial = range_test(compose(*problem), steps=10)  # for its initial loss
    grid = [1e-3, 1e-2, 1e-1, 1.0]
    short = [*problem, "trainer.epochs=10"]
    assert share_of_the_best_gain(tmp_path, short, record["suggestion"], grid, initial) > 0.9


def test_softmax_regression_on_digits_with_sgd_suggests_where_short_runs_do_best(tmp_path):
    result, initial = range_test(compose(*PROBLEM))
    assert result.suggestion is not None
    grid = [1e-2, 1e-1, 1.0, 10.0]
    short = [*PROBLEM, "trainer.epochs=3"]
    assert share_of_the_best_gain(tmp_path, short, result.suggestion, grid, initial) > 0.9


# an MLP fitting a noisy sine from batches of 8: the per-step loss scatters by about a third
# of its fall, and the steepest point slope of its moving average lies on the flat start
NOISY = ["model=mlp", "data=sine", "data.n_train=256", "trainer.batch_size=8",
         "trainer.threads=1"]


def test_a_noisy_curve_from_small_batches_suggests_where_short_runs_do_best(tmp_path):
    result, initial = range_test(compose(*NOISY))
    assert result.fall > result.noise_floor
    grid = [1e-4, 1e-3, 1e-2, 1e-1]
    short = [*NOISY, "trainer.epochs=5"]
    assert share_of_the_best_gain(tmp_path, short, result.suggestion, grid, initial) > 0.9


def test_no_suggestion_when_the_loss_never_falls_beyond_its_noise():
    """LRs far too small to move the weights: the curve is noise around the initial loss."""
    result, _ = range_test(compose("model=linear", "data=diabetes"), start_lr=1e-10, end_lr=1e-7)
    assert result.diverged_at is None and len(result.lrs) == 200
    assert result.suggestion is None and result.steepest_index is None
    assert 0 < result.fall < result.noise_floor


def test_pure_noise_rarely_yields_a_suggestion():
    """Flat curves of Gaussian noise: the old rule suggested an LR on every one of them."""
    rng = np.random.default_rng(0)
    lrs = lr_schedule(1e-7, 10.0, 200)
    found = [suggest(lrs, list(1 + 0.2 * rng.standard_normal(200))) for _ in range(40)]
    assert sum(f.index is not None for f in found) <= 2
    assert all(f.fall < f.noise_floor for f in found if f.index is None)


def test_a_clean_fall_is_found_at_its_steepest_point():
    """Without noise the rule is the textbook one: the steepest descent, then halfway to the minimum."""
    lrs = lr_schedule(1e-6, 10.0, 141)
    x = np.log10(lrs)
    loss = 2 - 1.5 / (1 + np.exp(-4 * (x + 3))) + np.exp(3 * (x - 1))  # falls around 1e-3
    found = suggest(lrs, list(loss))
    assert lrs[found.steepest_index] == pytest.approx(1e-3, rel=0.2)
    assert found.index == (found.steepest_index + found.min_index) // 2
    # the floor is not zero (the curve's bend reads as a little noise), but far below the fall
    assert found.fall > 1.4 and 0 < found.noise_floor < found.fall / 5
