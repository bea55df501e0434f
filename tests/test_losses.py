"""Losses: each on its task, the task metric whatever the loss, one-line mismatch errors,
probabilities from model=logistic, per-step labels, and what label smoothing does."""

import json

import pytest
import torch
from conftest import train
from torch.nn import functional as F

from dlrun.errors import UserError
from dlrun.models import Linear, Logistic
from dlrun.train.losses import BCE, IGNORE, MAE, MSE, CrossEntropy, Huber, auto
from dlrun.train.task import finish_metrics, loss_sums

QUICK = ["trainer.epochs=2", "diagnose=off", "trainer.checkpoint=false"]


def _final(run_dir):
    return json.loads((run_dir / "summary.json").read_text())["final"]


@pytest.mark.parametrize(
    ("loss", "data"),
    [
        ("mse", "data=sine"),
        ("mae", "data=sine"),
        ("huber", "data=sine"),
        ("bce", "data=moons"),
        ("cross_entropy", "data=digits"),
        ("auto", "data=moons"),
    ],
)
def test_each_loss_trains_on_its_task(tmp_path, loss, data):
    run = train(tmp_path / loss, "model=mlp", "model.hidden=[32]", data, f"loss={loss}", *QUICK)
    final = _final(run)
    assert final["train_loss"] > 0
    metric = "mae" if data == "data=sine" else "acc"
    assert f"val_{metric}" in final  # the task's metric, whatever the loss
    if loss == "mae":  # the reported loss is the loss trained on
        assert final["val_loss"] == pytest.approx(final["val_mae"], rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data=sine", "loss=cross_entropy"],
            "loss=cross_entropy does not fit this dataset's regression task; use loss=auto or loss=mse, loss=mae, loss=huber.",
        ),
        (
            ["data=digits", "loss=mse"],
            "loss=mse does not fit this dataset's multiclass task; use loss=auto or loss=cross_entropy.",
        ),
        (["data=digits", "loss=bce"], "loss=bce does not fit this dataset's multiclass task"),
        (
            ["data=moons", "loss=huber"],
            "loss=huber does not fit this dataset's binary task; use loss=auto or loss=bce.",
        ),
        (
            ["data=sine", "model=logistic"],
            "model=logistic outputs probabilities, which fit classification only; use model=linear",
        ),
    ],
)
def test_a_loss_that_does_not_fit_the_task_is_a_one_line_error(run_dir, overrides, message):
    with pytest.raises(UserError) as error:
        train(run_dir, *overrides, *QUICK)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_auto_picks_the_tasks_loss():
    assert type(auto(task="regression")) is MSE
    assert type(auto(task="binary")) is BCE
    assert type(auto(task="multiclass")) is CrossEntropy


def test_regression_losses_match_their_definitions():
    out = torch.tensor([[0.0], [0.5], [3.0]])
    y = torch.zeros(3, 1)
    assert MSE(task="regression")(out, y) == pytest.approx((0 + 0.25 + 9) / 3)
    assert MAE(task="regression")(out, y) == pytest.approx((0 + 0.5 + 3) / 3)
    # delta=1: 0.5 e^2 below, delta * (|e| - delta/2) above
    assert Huber(task="regression", delta=1.0)(out, y) == pytest.approx((0 + 0.125 + 2.5) / 3)
    huber = Huber(task="regression", delta=2.0)
    assert huber(out, y) == pytest.approx((0 + 0.125 + 2 * (3 - 1)) / 3)


def test_probabilities_from_logistic_give_the_same_loss_as_logits():
    torch.manual_seed(0)
    x = torch.randn(16, 5)
    for classes, task, y in (
        (4, "multiclass", torch.randint(0, 4, (16,))),
        (1, "binary", torch.randint(0, 2, (16,))),
    ):
        linear, logistic = Linear((5,), classes), Logistic((5,), classes)
        logistic[1].load_state_dict(linear[1].state_dict())
        on_logits = auto(task=task)
        on_probs = auto(task=task, outputs="probabilities")
        assert torch.allclose(on_probs(logistic(x), y), on_logits(linear(x), y), atol=1e-5)
        assert torch.equal(on_probs.predict(logistic(x)), on_logits.predict(linear(x)))
    # NLL on log-probabilities is the textbook -log p of the true class
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    loss = CrossEntropy(task="multiclass", outputs="probabilities")(probs, torch.tensor([0, 2]))
    assert loss.item() == pytest.approx(
        -(torch.log(torch.tensor(0.7)) + torch.log(torch.tensor(0.8))).item() / 2
    )


def test_a_saturated_probability_gives_a_large_finite_loss():
    probs = torch.tensor([[1.0, 0.0]])
    loss = CrossEntropy(task="multiclass", outputs="probabilities")(probs, torch.tensor([1]))
    assert torch.isfinite(loss) and loss > 50


def test_per_step_cross_entropy_and_accuracy_average_over_labelled_steps():
    torch.manual_seed(0)
    out, y = torch.randn(4, 6, 3), torch.randint(0, 3, (4, 6))
    loss = CrossEntropy(task="multiclass")
    assert torch.allclose(loss(out, y), F.cross_entropy(out.reshape(-1, 3), y.reshape(-1)))
    sums = loss_sums("multiclass", out, y, loss)
    acc = finish_metrics("multiclass", sums, y)["acc"]
    assert acc == pytest.approx((out.argmax(-1) == y).float().mean().item())
    masked = y.clone()
    masked[:, :2] = IGNORE  # steps without a target count in neither loss nor accuracy
    sums = loss_sums("multiclass", out, masked, loss)
    acc = finish_metrics("multiclass", sums, masked)["acc"]
    assert acc == pytest.approx((out.argmax(-1) == y)[:, 2:].float().mean().item())
    expected = F.cross_entropy(out[:, 2:].reshape(-1, 3), y[:, 2:].reshape(-1))
    assert torch.allclose(loss(out, masked), expected)


def test_per_step_binary_labels():
    out, y = torch.randn(3, 5, 1), torch.randint(0, 2, (3, 5))
    loss = BCE(task="binary")
    assert torch.allclose(
        loss(out, y), F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())
    )
    assert loss.predict(out).shape == (3, 5)


def test_per_step_labels_train_end_to_end(run_dir):
    train(
        run_dir,
        "data=parity",
        "data.per_step=true",
        "data.n=400",
        "model=gru",
        "model.hidden_size=16",
        *QUICK,
    )
    assert 0 < _final(run_dir)["val_acc"] <= 1


def test_label_smoothing_keeps_the_model_from_full_confidence():
    """The smoothed loss is minimized at p(true) = 1 - e + e/C, not at p(true) = 1."""
    classes, e = 5, 0.2
    y = torch.tensor([0, 1, 2, 3, 4])
    for smoothing, optimum in ((0.0, 1.0), (e, 1 - e + e / classes)):
        logits = torch.zeros(5, classes, requires_grad=True)
        loss = CrossEntropy(task="multiclass", label_smoothing=smoothing)
        optimizer = torch.optim.Adam([logits], lr=0.1)
        for _ in range(300):
            optimizer.zero_grad()
            loss(logits, y).backward()
            optimizer.step()
        p_true = logits.softmax(-1)[torch.arange(5), y]
        assert p_true.mean().item() == pytest.approx(optimum, abs=0.02)
    # a confident right answer costs nothing without smoothing and something with it
    confident = torch.tensor([[20.0, 0, 0, 0, 0]])
    assert CrossEntropy(task="multiclass")(confident, y[:1]) < 1e-6
    assert CrossEntropy(task="multiclass", label_smoothing=e)(confident, y[:1]) > 1
