"""Train jobs stacked and alone, in-process, for the stacked-training tests."""

from __future__ import annotations

import pytest
import torch
from conftest import compose

from dlrun.build import build_components
from dlrun.records import read_rows
from dlrun.train import fit
from dlrun.train.regularize import penalty_coefficients
from dlrun.train.stacked import Stack, StackJob, fit_stack

CPU = torch.device("cpu")


def stack_job(cfg, checkpoint_dir=None) -> StackJob:
    parts = build_components(cfg, CPU)
    l1, l2 = penalty_coefficients(cfg.get("reg"))
    return StackJob(parts, int(cfg.trainer.seed), float(cfg.model.get("dropout", 0.0) or 0.0), l1, l2,
                    cfg.trainer.grad_clip, bool(cfg.diagnose.enabled), checkpoint_dir)


def stacked_rows(configs, checkpoint_dirs=None) -> tuple[list[list[dict]], list[StackJob]]:
    """Each job's metrics.jsonl rows when the jobs train as one stack, and the jobs."""
    jobs = [stack_job(cfg, None if checkpoint_dirs is None else checkpoint_dirs[i])
            for i, cfg in enumerate(configs)]
    rows = [[] for _ in configs]
    for epoch in fit_stack(Stack(jobs, configs[0].trainer), trainer=configs[0].trainer):
        for j, row in epoch.items():
            rows[j].append(row.to_json())
    return rows, jobs


def solo_rows(cfg, loop_optimizer: bool = True) -> list[dict]:
    """The job's rows alone (dlrun.train.fit). `loop_optimizer`: torch's for-loop optimizer, the
    arithmetic the stack follows, instead of the fused kernel a solo run picks on a CPU."""
    with pytest.MonkeyPatch.context() as patch:
        if loop_optimizer:
            patch.setattr("dlrun.train.optimizers.fast_kwargs", lambda cls, device: {"foreach": False})
        parts = build_components(cfg, CPU)
    # to_json leaves the timing out, as metrics.jsonl does
    return [row.to_json() for row in fit(parts, cfg.trainer, grad_norms=cfg.diagnose.enabled)]


def configs(common: list[str], variants: list[list[str]]):
    return [compose("trainer.progress=off", *common, *variant) for variant in variants]


def file_rows(path) -> list[dict]:
    """metrics.jsonl's rows as the file has them (flat keys), to compare two runs' files."""
    return [row.to_json() for row in read_rows(path)]


def largest_difference(ours: list[dict], theirs: list[dict], keys=("loss", "acc", "mae")) -> float:
    """The largest relative difference of any split's metric over all epochs (same epochs asked)."""
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in theirs]
    worst = 0.0
    for a, b in zip(ours, theirs):
        for key, value in b.items():
            if key.endswith(keys) and isinstance(value, float):
                worst = max(worst, abs(a[key] - value) / max(abs(value), 1e-6))
    return worst
