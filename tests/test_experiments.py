"""Every experiment preset composes into a valid config; the known-result presets build the
networks their comments describe, follow their papers' recipes, and train (one short epoch)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, compose, train

from dlrun.config import validate

PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))

# preset -> parameter count of the network its comment describes
KNOWN_RESULTS = {
    "mnist1d_logistic": 40 * 10 + 10,
    "mnist1d_mlp": (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10),
    # three convolutions (kernel 5, bias, no batch norm), global average pooling, linear
    "mnist1d_cnn": (1 * 25 * 5 + 25) + 2 * (25 * 25 * 5 + 25) + (25 * 10 + 10),
    # a bidirectional GRU of 6 units: 3 gates x (input + hidden weights, 2 biases) per
    # direction, then both final states into the classifier
    "mnist1d_gru": 2 * 3 * (1 * 6 + 6 * 6 + 2 * 6) + (2 * 6 * 10 + 10),
    "digits_mlp": (64 * 128 + 128) + (128 * 10 + 10),
    # 3x3 convolutions without bias (batch norm follows: weight + bias), then 64 -> 128 -> 10
    "digits_cnn": (1 * 32 * 9 + 2 * 32) + (32 * 64 * 9 + 2 * 64) + (64 * 128 + 128) + 1290,
}
MNIST1D_TRAIN = 4000  # the paper's training set; the presets hold some of it out for validation


def test_the_known_result_presets_exist():
    assert set(KNOWN_RESULTS) <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_and_validates(preset):
    cfg = compose(f"experiment={preset}")
    validate(cfg)
    assert cfg.model._target_ and cfg.data._target_ and cfg.optim._target_


@pytest.mark.parametrize("preset", sorted(KNOWN_RESULTS))
def test_preset_documents_its_command_and_result(preset):
    text = (Path(CONFIG_DIR) / "experiment" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert f"dlrun experiment={preset}" in text
    assert "Reached here:" in text and "RESULT" not in text


@pytest.mark.parametrize("preset", [p for p in sorted(KNOWN_RESULTS) if "mnist1d" in p])
def test_mnist1d_presets_follow_the_papers_recipe(preset):
    """Adam at 1e-2, batches of 100, about 6,000 steps."""
    cfg = compose(f"experiment={preset}")
    assert cfg.data._target_ == "dlrun.data.mnist1d"
    assert (cfg.optim._target_.split(".")[-1], cfg.optim.lr) == ("Adam", 1e-2)
    assert cfg.trainer.batch_size == 100
    train_size = MNIST1D_TRAIN * (1 - cfg.data.val_fraction)
    steps = cfg.trainer.epochs * math.ceil(train_size / cfg.trainer.batch_size)
    assert abs(steps - 6000) <= 50, steps


@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    """One generated MNIST-1D for this module's runs, outside the user's cache."""
    return tmp_path_factory.mktemp("mnist1d-cache")


@pytest.mark.parametrize("preset", sorted(KNOWN_RESULTS))
def test_preset_trains_one_short_epoch(preset, tmp_path, mnist1d_cache):
    overrides = [f"experiment={preset}", "data.n_train=200", "trainer.epochs=1"]
    overrides += ["diagnose=off", "trainer.checkpoint=false"]
    if "mnist1d" in preset:
        overrides.append(f"data.cache_dir={mnist1d_cache}")
    run_dir = train(tmp_path / "run", *overrides)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok"
    assert summary["params"] == KNOWN_RESULTS[preset]
    assert summary["steps"] == math.ceil(200 / compose(*overrides).trainer.batch_size)
    assert 0.0 <= summary["final"]["test_acc"] <= 1.0
