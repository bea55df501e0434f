"""The LR range test: its suggestion lies where the loss falls, and `mode=lr_find` records it."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import FAST, compose

from dlrun.build import build, build_loss
from dlrun.errors import UserError
from dlrun.lr_find import command_with_lr
from dlrun.runner import run_job
from dlrun.train.lr_range import lr_range_test, lr_schedule

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
    assert record["rule"].startswith("steepest descent")
    assert 1e-4 <= record["suggestion"] < record["min_loss_lr"]
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
