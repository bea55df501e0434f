"""The thread rule: one thread for a small step, else this process's share of the cores."""

import json

import torch
from conftest import compose, train

from dlrun.build import build_components
from dlrun.train.threads import (
    THREADED_STEP_FLOPS,
    core_share,
    default_threads,
    rule_threads,
    step_flops,
)

SMALL, LARGE = THREADED_STEP_FLOPS / 10, THREADED_STEP_FLOPS * 10


def test_a_small_step_gets_one_thread_however_many_cores():
    assert default_threads(SMALL, cores=64, parallel=1) == 1
    assert default_threads(THREADED_STEP_FLOPS * 0.99, cores=2) == 1


def test_a_large_step_gets_its_share_of_the_cores():
    assert default_threads(LARGE, cores=16, parallel=1) == 16
    assert default_threads(THREADED_STEP_FLOPS, cores=2) == 2
    assert default_threads(LARGE, cores=16, parallel=4) == 4  # e.g. joblib n_jobs=4
    assert default_threads(LARGE, cores=16, parallel=3) == 5
    assert default_threads(LARGE, cores=2, parallel=8) == 1  # never fewer than one
    assert core_share(16, 0) == 16


def test_the_work_per_step_is_a_batch_of_forward_flops():
    mlp = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    x = torch.randn(8, 40)
    assert step_flops(mlp, x, batch_rows=1) == 2 * (40 * 100 + 100 * 10)
    assert step_flops(mlp, x, batch_rows=100) == 100 * step_flops(mlp, x, batch_rows=1)
    # a convolution does many FLOPs per weight; a recurrent layer spends its weights every step
    conv = torch.nn.Conv1d(1, 32, 5)
    assert step_flops(conv, torch.randn(2, 1, 40), 1) == 2 * 36 * 32 * 5
    lstm = torch.nn.LSTM(1, 64, batch_first=True)
    weights = sum(p.numel() for p in lstm.parameters())
    assert step_flops(lstm, torch.randn(2, 40, 1), 1) == 2 * 40 * weights


def test_the_default_run_is_small_and_trainer_threads_overrides_the_rule(one_thread):
    cfg = compose()
    parts = build_components(cfg, torch.device("cpu"))
    assert rule_threads(cfg.trainer, parts.model, parts.data) == 1
    assert rule_threads(compose("trainer.threads=3").trainer, parts.model, parts.data) == 3


def test_a_large_model_takes_the_cores_split_among_parallel_jobs(monkeypatch, one_thread):
    monkeypatch.setattr("dlrun.train.threads.cores_available", lambda: 8)
    cfg = compose("model=cnn", "model.channels=[64,64]", "trainer.batch_size=512")
    parts = build_components(cfg, torch.device("cpu"))
    assert step_flops(parts.model, parts.data.x_train, 512) > THREADED_STEP_FLOPS
    assert rule_threads(cfg.trainer, parts.model, parts.data) == 8
    assert rule_threads(cfg.trainer, parts.model, parts.data, parallel=2) == 4


def test_summary_records_the_threads_the_rule_chose(run_dir):
    before = torch.get_num_threads()
    try:
        train(run_dir, "diagnose=off", "data.n_train=200")
    finally:
        torch.set_num_threads(before)
    assert json.loads((run_dir / "summary.json").read_text())["threads"] == 1
