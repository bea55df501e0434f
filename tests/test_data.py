"""The built-in datasets: shapes, tasks, splits, determinism, label noise, test shifts, training."""

from __future__ import annotations

import functools
import json
import random

import numpy as np
import pytest
import torch
from conftest import compose, train
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from dlrun.config import validate
from dlrun.data import make_dataset
from dlrun.data import sequences as sequences_module
from dlrun.errors import UserError

# name -> (overrides that keep it small, input shape, task, y shape per example, total examples)
SMALL = {
    "digits": ([], (1, 8, 8), "multiclass", (), 1797),
    "sine": (["data.n=300"], (1,), "regression", (1,), 300),
    "iris": ([], (4,), "multiclass", (), 150),
    "wine": ([], (13,), "multiclass", (), 178),
    "breast_cancer": ([], (30,), "binary", (), 569),
    "diabetes": ([], (10,), "regression", (1,), 442),
    "moons": (["data.n=300"], (2,), "binary", (), 300),
    "circles": (["data.n=300"], (2,), "binary", (), 300),
    "spirals": (["data.n=300"], (2,), "multiclass", (), 300),
    "adding": (["data.n=300", "data.length=20"], (20, 2), "regression", (1,), 300),
    "parity": (["data.n=300", "data.length=6"], (6, 1), "binary", (), 300),
    "mnist1d": (["data.n=500", "data.cache_dir=null"], (40, 1), "multiclass", (), 500),
}
SHIFTS = {
    "digits": ["invert", "rotate", "noise"],
    "sine": ["extrapolate"],
    "iris": ["offset", "scale", "noise"],
    "wine": ["offset", "scale", "noise"],
    "breast_cancer": ["offset", "scale", "noise"],
    "diabetes": ["offset", "scale", "noise"],
    "moons": ["offset", "scale", "noise", "rotate"],
    "circles": ["offset", "scale", "noise", "rotate"],
    "spirals": ["offset", "scale", "noise", "rotate"],
    "adding": ["noise", "scale"],
    "parity": ["noise", "density"],
    "mnist1d": ["noise", "flip"],
}


@functools.cache
def build(name: str, *overrides: str, seed: int = 0):
    """The dataset `dlrun data=<name> <overrides>` would train on (cached: tests only read it)."""
    cfg = compose(f"data={name}", *SMALL[name][0], *overrides)
    validate(cfg)
    try:
        return instantiate(cfg.data, seed=seed)
    except InstantiationException as error:  # what the command line unwraps and prints
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def splits(data):
    return [data.split(s) for s in ("train", "val", "test")]


@pytest.mark.parametrize("name", SMALL)
def test_shapes_task_and_split_sizes(name):
    _, shape, task, y_shape, total = SMALL[name]
    data = build(name)
    assert data.task == task and data.input_shape == shape
    for x, y in splits(data):
        assert x.dtype == torch.float32 and tuple(x.shape[1:]) == shape
        assert tuple(y.shape[1:]) == y_shape and len(y) == len(x) > 0
        assert y.dtype == (torch.float32 if task == "regression" else torch.int64)
    n_train, n_val, n_test = (len(x) for x, _ in splits(data))
    assert n_train + n_val + n_test == total
    if name == "mnist1d":  # the generator's own 80/20 split is the test set
        assert n_test == total // 5
    else:
        assert abs(n_test - 0.2 * total) <= 1
    assert abs(n_val - 0.2 * (total - n_test)) <= 1
    if task != "regression":
        assert int(data.y_train.max()) < data.n_classes
        assert set(data.y_train.tolist()) == set(range(data.n_classes))  # stratified: every class


@pytest.mark.parametrize("name", SMALL)
def test_a_seed_fixes_the_dataset(name):
    first, again, other = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    for (x1, y1), (x2, y2) in zip(splits(first), splits(again)):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(first.x_train, other.x_train)


def test_splits_are_disjoint_and_subsampling_is_exact():
    x = np.arange(1000, dtype=np.float32)[:, None]  # each row its own id
    y = np.arange(1000) % 4
    data = make_dataset(
        "ids",
        x,
        y,
        task="multiclass",
        seed=0,
        val_fraction=0.25,
        test_fraction=0.2,
        standardize=None,
    )
    ids = [set(s[0][:, 0].long().tolist()) for s in splits(data)]
    assert [len(i) for i in ids] == [600, 200, 200]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert ids[0] | ids[1] | ids[2] == set(range(1000))
    small = make_dataset(
        "ids",
        x,
        y,
        task="multiclass",
        seed=0,
        val_fraction=0.25,
        test_fraction=0.2,
        n_train=50,
        standardize=None,
    )
    assert len(small.x_train) == 50 and set(small.x_train[:, 0].long().tolist()) <= ids[0]
    assert torch.equal(small.x_test, data.x_test)
    with pytest.raises(UserError, match=r"data.n_train=601 .* data.n_train<=600"):
        make_dataset(
            "ids",
            x,
            y,
            task="multiclass",
            seed=0,
            val_fraction=0.25,
            test_fraction=0.2,
            n_train=601,
        )
    # and a generated dataset's rows do not leak between splits
    sine = build("sine")
    train_x = set(sine.x_train[:, 0].tolist())
    assert not train_x & set(sine.x_test[:, 0].tolist())
    assert not train_x & set(sine.x_val[:, 0].tolist())


def test_standardization_uses_training_statistics_and_spares_constant_features():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(5, 3, 500), np.full(500, 7.0)])
    data = make_dataset(
        "t", x, rng.normal(size=500), task="regression", seed=0, val_fraction=0.2, test_fraction=0.2
    )
    assert torch.allclose(data.x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert data.x_train[:, 0].std(unbiased=False).item() == pytest.approx(1, abs=1e-4)
    assert torch.equal(data.x_test[:, 1], torch.zeros(len(data.x_test)))  # 7 - 7, scale 1
    assert data.y_train.mean().abs().item() < 1e-5  # regression targets too
    images = build("digits")  # one statistic per pixel
    assert images.x_train.mean(0).abs().max().item() < 1e-4
    mnist1d = build("mnist1d")  # sequences: one statistic per feature over all steps
    assert mnist1d.x_train.mean().abs().item() < 1e-4
    assert mnist1d.x_train.std(unbiased=False).item() == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "diabetes"])
def test_label_noise_flips_exactly_that_fraction_of_training_labels(name):
    clean, noisy = build(name), build(name, "data.label_noise=0.3")
    assert torch.equal(clean.x_train, noisy.x_train)
    count = round(0.3 * len(clean.y_train))
    if name != "diabetes":
        assert (clean.y_train != noisy.y_train).sum().item() == count
        for split in ("val", "test"):
            assert torch.equal(clean.split(split)[1], noisy.split(split)[1])
        return
    # regression targets are standardized with the (noisy) training statistics, so the raw
    # targets agree wherever the standardized ones are one affine map of each other
    scale, shift = np.polyfit(clean.y_val[:, 0].numpy(), noisy.y_val[:, 0].numpy(), 1)
    for split in ("val", "test"):
        y, y_noisy = clean.split(split)[1], noisy.split(split)[1]
        assert torch.allclose(scale * y + shift, y_noisy, atol=1e-4)
    changed = ((scale * clean.y_train + shift - noisy.y_train).abs() > 1e-4).sum().item()
    assert 0.9 * count <= changed <= count  # replaced by other training targets: a few repeat


def test_per_step_label_noise_flips_that_fraction_of_all_steps():
    clean = build("parity", "data.per_step=true")
    noisy = build("parity", "data.per_step=true", "data.label_noise=0.25")
    assert clean.per_step and clean.task == "multiclass" and clean.out_features == 2
    assert (clean.y_train != noisy.y_train).sum().item() == round(0.25 * clean.y_train.numel())
    assert torch.equal(clean.y_val, noisy.y_val)


@pytest.mark.parametrize(
    ("name", "shift"), [(n, s) for n, shifts in SHIFTS.items() for s in shifts]
)
def test_test_shift_changes_test_only(name, shift):
    clean, shifted = build(name), build(name, f"data.test_shift={shift}")
    assert shifted.test_shift == shift
    for split in ("train", "val"):
        for a, b in zip(clean.split(split), shifted.split(split)):
            assert torch.equal(a, b)
    assert shifted.x_test.shape[1:] == clean.x_test.shape[1:]
    assert not torch.equal(clean.x_test, shifted.x_test)


def test_shifts_do_what_they_say():
    sine = build("sine", "data.test_shift=extrapolate")
    low, high = sine.x_train.min(), sine.x_train.max()
    assert ((sine.x_test < low) | (sine.x_test > high)).all()
    adding = build("adding", "data.test_shift=scale")
    assert adding.y_test.mean() > adding.y_val.mean() + 1  # sums beyond the training range
    clean, flipped = build("mnist1d"), build("mnist1d", "data.test_shift=flip")
    assert torch.allclose(flipped.x_test, clean.x_test.flip(1))
    with pytest.raises(
        UserError,
        match="data.test_shift=upside_down is unknown for moons; choose from: noise, offset, rotate, scale",
    ):
        build("moons", "data.test_shift=upside_down")


def test_sequences_mean_what_they_say():
    parity = build("parity")
    for x, y in splits(parity):
        assert torch.equal(y, x.squeeze(-1).long().sum(1) % 2)
    steps = build("parity", "data.per_step=true")
    assert steps.y_train.shape == (len(steps.x_train), 6)
    assert torch.equal(steps.y_train, steps.x_train.squeeze(-1).long().cumsum(1) % 2)
    adding = build("adding")
    marked = (adding.x_train[..., 0] * adding.x_train[..., 1]).sum(1)
    assert (adding.x_train[..., 1].sum(1) == 2).all()
    corr = np.corrcoef(marked.numpy(), adding.y_train[:, 0].numpy())[0, 1]
    assert corr == pytest.approx(1, abs=1e-5)  # the target is the marked sum (standardized)


def test_function_and_arms_knobs():
    square = build("sine", "data.function=square", "data.noise=0.0")
    x, y = square.x_train[:, 0].double().numpy(), square.y_train[:, 0].double().numpy()
    # standardization is affine, so y is exactly a parabola in x; a sine would not be
    assert np.abs(np.polyval(np.polyfit(x, y, 2), x) - y).max() < 1e-4
    x, y = (a[:, 0].double().numpy() for a in build("sine").split("train"))
    assert np.abs(np.polyval(np.polyfit(x, y, 2), x) - y).max() > 0.5
    with pytest.raises(UserError, match="data.function=tan is unknown; choose from: sin, cos"):
        build("sine", "data.function=tan")
    assert build("spirals", "data.arms=5").n_classes == 5
    two = build("spirals", "data.arms=2")
    assert two.task == "binary" and two.out_features == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.arms=1", "data.arms=1 is out of range"),
        ("data.noise=-1", "data.noise=-1"),
        ("data.n=3", "data.n=3 is out of range"),
    ],
)
def test_knob_ranges(override, message):
    with pytest.raises(UserError, match=message):
        build("spirals", override)


def test_mnist1d_is_generated_locally_cached_and_leaves_global_rngs_alone(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d must never be downloaded")

    fresh = build.__wrapped__  # really build it every time
    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.chdir(tmp_path)  # the package's own pickle path would land here
    np.random.seed(123)
    random.seed(123)
    expected = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    cache = tmp_path / "cache"
    first = fresh("mnist1d", f"data.cache_dir={cache}")
    assert (np.random.rand(), random.random()) == expected
    stored = list(cache.glob("mnist1d-*.npz"))
    assert len(stored) == 1 and not list(tmp_path.glob("*.pkl"))
    with np.load(stored[0], allow_pickle=False) as arrays:
        assert arrays["x"].shape == (400, 40) and arrays["x_test"].shape == (100, 40)

    def generator_called(args):
        raise AssertionError("a cached dataset must not be generated again")

    monkeypatch.setattr(sequences_module, "_run_generator", generator_called)
    again = fresh("mnist1d", f"data.cache_dir={cache}")
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert len(fresh("mnist1d", "data.cache_dir=null", "data.n=600").x_test) == 120
    assert len(list(cache.glob("mnist1d-*.npz"))) == 1  # null: nothing cached
    stored[0].write_bytes(b"not a zip")  # a damaged entry is regenerated, not trusted
    assert torch.equal(fresh("mnist1d", f"data.cache_dir={cache}").x_train, first.x_train)


# (name, overrides) for one quick training run each; every one runs through model=mlp
TRAINABLE = {
    "digits": ["data.n_train=200"],
    "sine": ["data.n=200"],
    "iris": [],
    "wine": [],
    "breast_cancer": ["data.n_train=100"],
    "diabetes": [],
    "moons": ["data.n=200"],
    "circles": ["data.n=200"],
    "spirals": ["data.n=200"],
    "adding": ["data.n=200", "data.length=10"],
    "parity": ["data.n=200"],
    "mnist1d": ["data.n=500", "data.cache_dir=null"],
}


@pytest.mark.parametrize("name", TRAINABLE)
def test_an_mlp_trains_on_it(name, run_dir):
    train(
        run_dir,
        f"data={name}",
        "model=mlp",
        "trainer.checkpoint=false",
        "diagnose=off",
        *TRAINABLE[name],
    )
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert all(np.isfinite(rows[-1][f"{split}_loss"]) for split in ("train", "val", "test"))
    metric = "mae" if SMALL[name][2] == "regression" else "acc"
    assert f"test_{metric}" in rows[-1]
