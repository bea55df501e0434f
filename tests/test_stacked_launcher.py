"""hydra/launcher=stacked from the command line (in-process): how jobs are grouped, and that
every stacked job is a full run directory, equal to its solo run, resumable as a plain run."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import FAST, compose, train
from stacked_helpers import file_rows, largest_difference
from test_sweep import multirun

from dlrun.records import read_diagnosis, read_summary
from dlrun.sweep.stacked.grouping import plan
from dlrun.sweep.summary import SUMMARY_JSON

GRID = ["optim.lr=0.01,0.003", "optim.weight_decay=0,0.001"]
RUN = ["trainer.epochs=2", "trainer.checkpoint=true", "diagnose=default", "data.n_train=256"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacked")
    return multirun(root, "hydra/launcher=stacked", *GRID, *RUN, "trainer.progress=lines")


def job_dir(sweep_dir, overrides: list[str]):
    for path in sweep_dir.glob("*/.hydra/overrides.yaml"):
        if set(overrides) <= set(yaml.safe_load(path.read_text())):
            return path.parent.parent
    raise LookupError(overrides)


def test_the_grouping_is_printed_before_training(sweep):
    _, printed = sweep
    assert "Stacking 4 jobs: 1 stack(s), 0 job(s) alone" in printed
    assert "stack 1: jobs #0-#3 (4 jobs, differing in optim.lr, optim.weight_decay)" in printed
    assert printed.index("stack 1: jobs") < printed.index("stack 1 (4 jobs) epoch 1/2")


def test_every_job_is_a_full_run_directory(sweep):
    sweep_dir, _ = sweep
    summary = json.loads((sweep_dir / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 4 and summary["n_failed"] == 0 and summary["best_job"] is not None
    for job in summary["jobs"]:
        run = sweep_dir / job["dir"]
        for name in (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml",
                     "diagnosis.json", "checkpoints/last.pt", "checkpoints/best.pt"):
            assert (run / name).is_file(), name
        assert [r["epoch"] for r in file_rows(run / "metrics.jsonl")] == [1, 2]
        # TensorBoard under tb/<the job's overrides>/, one run per split, as a solo sweep job's
        boards = {p.parent for p in (run / "tb").rglob("events.out.tfevents.*")
                  if p.parent.name not in ("train", "val", "test")}
        assert len(boards) == 1 and "optim.lr=" in boards.pop().name
        assert list((run / "tb").rglob("val/events*"))
        own = json.loads((run / "summary.json").read_text())
        assert own["status"] == "ok" and own["stack"]["size"] == 4 and own["steps"] == 8
        assert job["verdict"] == json.loads((run / "diagnosis.json").read_text())["verdict"]
        last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        assert {"epoch", "model", "optimizer", "scheduler", "rng", "best_val_loss", "best_epoch"} <= set(last)
        assert last["epoch"] == 2 and last["optimizer"]["state"][0]["step"] == 8


def test_each_job_is_diagnosed_on_its_share_of_the_stack_and_the_data_probed_once(sweep):
    # (before the resume test below retrains one job alone)
    sweep_dir, _ = sweep
    runs = sorted(p.parent for p in sweep_dir.glob("*/diagnosis.json"))
    assert len(runs) == 4
    summaries = [read_summary(run) for run in runs]
    diagnoses = [read_diagnosis(run).to_json() for run in runs]
    for summary, diagnosis in zip(summaries, diagnoses):
        # the probes' budget is probe_budget x the job's share of the stack's time
        assert diagnosis["cost"]["train_s"] == pytest.approx(summary.wall_time_s / 4)
    # the constant predictor's losses depend on the data only: measured by one job, read by all
    assert len({json.dumps(d["evidence"]["trivial"]) for d in diagnoses}) == 1
    assert sum("trivial_s" in d["cost"] for d in diagnoses) == 1


def test_a_stacked_job_equals_its_solo_run(sweep, tmp_path, one_thread):
    sweep_dir, _ = sweep
    overrides = ["optim.lr=0.003", "optim.weight_decay=0.001", *RUN]
    solo = file_rows(train(tmp_path / "solo", *overrides) / "metrics.jsonl")
    stacked = file_rows(job_dir(sweep_dir, overrides[:2]) / "metrics.jsonl")
    assert largest_difference(stacked, solo) < 1e-5


def test_a_stacked_job_resumes_as_a_plain_run(sweep, tmp_path, one_thread):
    """trainer.resume reads its checkpoint (model, optimizer, schedule, batch order) as a solo run's."""
    sweep_dir, _ = sweep
    overrides = ["optim.lr=0.01", "optim.weight_decay=0", *RUN]
    run = job_dir(sweep_dir, overrides[:2])
    train(run, *overrides, "trainer.epochs=3", f"trainer.resume={run}")
    solo = file_rows(train(tmp_path / "solo", *overrides, "trainer.epochs=3") / "metrics.jsonl")
    resumed = file_rows(run / "metrics.jsonl")
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert largest_difference(resumed, solo) < 1e-5


def test_jobs_that_fit_no_stack_run_alone_and_a_failed_job_does_not_stop_the_stack(tmp_path):
    sweep_dir, printed = multirun(tmp_path, "hydra/launcher=stacked", "reg=none,augment",
                                  "optim=sgd", "optim.lr=0.05,1e6", "trainer.epochs=2")
    assert "stack 1: jobs #0-#1 (2 jobs, differing in optim.lr)" in printed
    assert "#2 alone: reg=augment runs alone" in printed and "#3 alone: reg=augment" in printed
    jobs = json.loads((sweep_dir / SUMMARY_JSON).read_text())["jobs"]
    assert len(jobs) == 4
    for job in jobs:  # the huge learning rate fails, in the stack and alone alike
        if "optim.lr=0.05" in job["overrides"]:
            assert job["status"] == "ok", job
        else:
            assert job["status"] == "failed" and "non-finite" in job["error"], job


def test_a_job_whose_parts_do_not_build_fails_alone_and_the_stack_trains(tmp_path):
    sweep_dir, _ = multirun(tmp_path, "hydra/launcher=stacked", "optim=nesterov",
                            "optim.momentum=0.9,0.0", "optim.lr=0.01,0.003")
    jobs = json.loads((sweep_dir / SUMMARY_JSON).read_text())["jobs"]
    for job in jobs:
        zero = "optim.momentum=0.0" in job["overrides"]
        assert job["status"] == ("failed" if zero else "ok"), job
        if zero:
            assert "nesterov" in job["error"].lower()


def grouping(*sweeps: list[str], max_stack: int = 64):
    configs = [compose(*FAST, *overrides) for overrides in sweeps]
    return plan(configs, max_stack)


def test_per_job_knobs_stack_and_anything_else_splits():
    result = grouping(
        ["optim.lr=0.1"], ["optim.lr=0.01", "trainer.seed=3", "reg=[l2,dropout]", "trainer.grad_clip=1"],
        ["optim.momentum=0.5", "optim=sgd"], ["optim=sgd", "optim.lr=0.2", "sched=cosine"],
        ["model.hidden=[8]"], ["model.hidden=[8]", "data.label_noise=0.1"],
        ["data.n_train=100"],
    )
    assert result.stacks == [[0, 1], [4, 5]]
    assert set(result.alone) == {2, 3, 6}
    assert "differs from stack 1 in" in result.alone[6] and "data.n_train" in result.alone[6]
    assert "optim._target_" in result.alone[2] or "optim" in result.alone[2]


def test_a_group_larger_than_max_stack_is_split():
    result = grouping(*[[f"optim.lr={lr}"] for lr in (0.1, 0.2, 0.3, 0.4, 0.5)], max_stack=2)
    assert result.stacks == [[0, 1], [2, 3]] and list(result.alone) == [4]


@pytest.mark.parametrize("overrides, reason", [
    (["mode=lr_find"], "mode=lr_find runs alone"),
    (["model=transformer", "data=parity"], "model Transformer is not stackable"),
    (["reg=augment"], "reg=augment runs alone"),
    (["trainer.precision=fp16"], "fp16"),
    (["diagnose.hessian_every=2"], "hessian_every"),
    (["+cv.folds=3"], "cross-validation"),
])
def test_why_a_job_runs_alone(overrides, reason):
    result = grouping(overrides, overrides)
    assert result.stacks == [] and reason in result.alone[0]


@pytest.mark.slow  # worker processes import torch
def test_stacks_train_side_by_side_in_joblib_workers(tmp_path):
    sweep_dir, printed = multirun(tmp_path, "hydra/launcher=stacked", "hydra.launcher.n_jobs=2",
                                  "optim.lr=0.01,0.003,0.001,0.0003")
    assert "stack 1: jobs #0-#1" in printed and "stack 2: jobs #2-#3" in printed
    summary = json.loads((sweep_dir / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 4 and summary["n_failed"] == 0
    for job in summary["jobs"]:
        own = json.loads((sweep_dir / job["dir"] / "summary.json").read_text())
        assert own["stack"]["size"] == 2 and own["threads"] == 1  # the cores shared by 2 workers

