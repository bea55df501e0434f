"""Regularizers and clipping, by their real effect on weights, batches, gradients and epochs."""

import json

import pytest
import torch
from conftest import FAST, compose, train

from dlrun.build import build, build_loss
from dlrun.runner import run_job
from dlrun.train import Components, fit
from dlrun.train.augment import BatchAugment
from dlrun.train.early_stopping import EarlyStopping
from dlrun.train.regularize import penalty_coefficients

pytestmark = pytest.mark.usefixtures("one_thread")


# softmax regression on 300 flat digits: quick, and its weights are one matrix
LINEAR = [
    "model=linear",
    "data=digits",
    "data.flat=true",
    "data.n_train=300",
    "optim=sgd",
    "optim.lr=0.1",
    "trainer.epochs=3",
    "diagnose=off",
    "trainer.threads=1",
]


def weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    return torch.cat([w.flatten() for w in state.values() if w.ndim >= 2])


@pytest.fixture(scope="module")
def unregularized(tmp_path_factory):
    return weights(train(tmp_path_factory.mktemp("none") / "run", *LINEAR))


def l1(w):
    return w.abs().sum()


def l2(w):
    return w.square().sum()


@pytest.mark.parametrize(
    ("reg", "norms"),
    [
        (["reg=l2", "reg.l2.strength=0.1"], [l2]),
        (["reg=l1", "reg.l1.strength=0.01"], [l1]),
        (["reg=elastic", "reg.elastic.strength=0.05"], [l1, l2]),
    ],
    ids=["l2", "l1", "elastic"],
)
def test_penalty_shrinks_the_weights(tmp_path, unregularized, reg, norms):
    shrunk = weights(train(tmp_path / "run", *LINEAR, *reg))
    for norm in norms:
        assert norm(shrunk) < 0.9 * norm(unregularized)


def test_penalties_add_up():
    cfg = compose(
        "reg=[l1,l2,elastic]",
        "reg.l1.strength=1",
        "reg.l2.strength=2",
        "reg.elastic.strength=4",
        "reg.elastic.l1_ratio=0.25",
    )
    assert penalty_coefficients(cfg.reg) == (1 + 1, 2 + 3)
    assert penalty_coefficients(compose("reg=none").reg) == (0, 0)


def parts(*overrides):
    cfg = compose(*FAST, *LINEAR, *overrides)
    data, model, optimizer, scheduler, interval = build(cfg, torch.device("cpu"))
    return cfg, data, model, optimizer, scheduler, build_loss(cfg, data, model)


def test_early_stopping_stops_and_restores_the_best_epoch():
    # an "improvement" must beat the best by 0.05: the loss soon improves more slowly than that
    cfg, data, model, optimizer, scheduler, loss = parts("trainer.epochs=30", "optim.lr=0.05")
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    seen = {}
    for row in fit(Components(data, model, optimizer, scheduler, loss=loss, stopper=stopper),
                   cfg.trainer):
        seen[row.epoch] = {k: v.clone() for k, v in model.state_dict().items()}
    stopped, best = stopper.stopped_epoch, stopper.best_epoch
    assert stopped is not None and stopped < 30 and max(seen) == stopped
    assert stopped - best == 2
    assert stopper.restored
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[best][key])
    assert any(not torch.equal(seen[stopped][key], seen[best][key]) for key in seen[best])


def test_early_stopping_is_recorded_and_returns_the_restored_loss(run_dir):
    # min_delta=10: only the first epoch counts as an improvement, so patience 1 stops at epoch 2
    cfg = compose(
        *FAST,
        *LINEAR,
        "trainer.epochs=10",
        "reg=early_stopping",
        "reg.early_stopping.patience=1",
        "reg.early_stopping.min_delta=10",
    )
    returned = run_job(cfg, run_dir=run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert summary["early_stopping"] == {
        "patience": 1,
        "min_delta": 10.0,
        "stopped_epoch": 2,
        "best_epoch": 1,
        "best_val_loss": rows[0]["val_loss"],
        "restored_best": True,
    }
    assert returned == summary["objective"] == rows[0]["val_loss"]  # not the last epoch's


def recorded_inputs(model):
    """(training?, input) for every forward call."""
    calls = []
    model.register_forward_pre_hook(
        lambda module, args: calls.append((module.training, args[0].clone()))
    )
    return calls


@pytest.mark.parametrize("flat", [False, True], ids=["images", "vectors"])
def test_augmentation_changes_training_batches_only(flat):
    cfg, data, model, optimizer, scheduler, loss = parts(
        "reg=augment", f"data.flat={str(flat).lower()}", "trainer.epochs=1",
        "trainer.eval_batch_size=512",  # set: no one-row probe of the activations' size
    )
    calls = recorded_inputs(model)
    from hydra.utils import instantiate

    augment = instantiate(cfg.reg.augment)
    list(fit(Components(data, model, optimizer, scheduler, loss=loss, augment=augment), cfg.trainer))
    training = torch.cat([x for is_training, x in calls if is_training]).flatten(1)
    evaluated = torch.cat([x for is_training, x in calls if not is_training])
    assert len(training) == len(data.x_train)
    originals = data.x_train.flatten(1)
    # no training input is one of the originals ...
    assert torch.cdist(training, originals).min() > 1e-3
    # ... while evaluation saw exactly the three splits, untouched
    assert torch.equal(evaluated, torch.cat([data.x_train, data.x_val, data.x_test]))


def test_image_augmentation_is_a_padded_crop_and_a_flip():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 10)
    shifted = BatchAugment(crop_pad=2, hflip=False, rotate=0, scale=0)(x, None, generator)[0]
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for original, out in zip(padded, shifted):
        crops = [original[:, dy : dy + 8, dx : dx + 10] for dy in range(5) for dx in range(5)]
        assert any(torch.allclose(out, crop, atol=1e-5) for crop in crops)
    flipped = BatchAugment(crop_pad=0, hflip=True, rotate=0, scale=0)(x, None, generator)[0]
    same = [torch.allclose(o, a, atol=1e-5) for o, a in zip(x, flipped)]
    mirror = [torch.allclose(o.flip(-1), a, atol=1e-5) for o, a in zip(x, flipped)]
    assert all(s or m for s, m in zip(same, mirror)) and 10 < sum(mirror) < 54
    rotated = BatchAugment(crop_pad=0, rotate=30, scale=0.2)(x, None, generator)[0]
    assert rotated.shape == x.shape and not torch.allclose(rotated, x, atol=1e-3)


def test_sequence_shift_rolls_per_step_labels_with_their_inputs():
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(4 * 12, dtype=torch.float32).view(4, 12, 1).repeat(1, 1, 3)
    y = x[..., 0].long()  # each step labelled with its own input
    out_x, out_y = BatchAugment(noise=0.0, shift=3)(x, y, generator)
    assert torch.equal(out_x[..., 0].long(), out_y)  # labels moved with their steps
    for original, rolled in zip(x, out_x):
        assert any(torch.equal(original.roll(k, 0), rolled) for k in range(-3, 4))
    noisy, labels = BatchAugment(noise=0.5)(x, y, generator)
    assert torch.equal(labels, y) and 0.3 < (noisy - x).std() < 0.7


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that records the gradients it is asked to apply."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.norms, self.largest = [], []

    def step(self, closure=None):
        grads = [
            p.grad for group in self.param_groups for p in group["params"] if p.grad is not None
        ]
        self.norms.append(torch.nn.utils.get_total_norm(grads).item())
        self.largest.append(max(g.abs().max().item() for g in grads))
        return super().step(closure)


@pytest.mark.parametrize(("mode", "limit"), [("norm", 0.05), ("value", 0.002), (None, None)])
def test_clipping_bounds_the_applied_gradient(mode, limit):
    clip = [f"trainer.grad_clip={limit}", f"trainer.grad_clip_mode={mode}"] if mode else []
    cfg, data, model, _, _, loss = parts("trainer.epochs=1", *clip)
    optimizer = RecordingSGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    list(fit(Components(data, model, optimizer, scheduler, loss=loss), cfg.trainer))
    if mode == "norm":
        assert max(optimizer.norms) <= limit * (1 + 1e-4)
    elif mode == "value":
        assert max(optimizer.largest) <= limit * (1 + 1e-6)  # float32's 0.002
    else:  # the same run unclipped goes well past both limits
        assert max(optimizer.norms) > 0.05 * 5 and max(optimizer.largest) > 0.002 * 5
