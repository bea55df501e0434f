"""curves.png for every run and sweep.png for every multirun: checked through the figures'
own data and the PNG's size, not pixels."""

from __future__ import annotations

import json

import pytest
from conftest import train
from matplotlib.image import imread

from dlrun.records import Code, Diagnosis, EpochRow, Finding, Verdict
from dlrun.report import pictures


def _rows(losses: list[tuple[float, float, float]], lrs: list[float]) -> list[EpochRow]:
    return [EpochRow(epoch=i + 1, lr=lr,
                     splits={"train": {"loss": t}, "val": {"loss": v}, "test": {"loss": s}})
            for i, ((t, v, s), lr) in enumerate(zip(losses, lrs))]


def test_curves_plot_every_split_mark_the_best_epoch_and_say_the_verdict():
    losses = [(2.0, 2.1, 2.2), (0.5, 0.6, 0.7), (0.05, 0.3, 0.35), (0.01, 0.4, 0.5)]
    diagnosis = Diagnosis(Verdict.OVERFITTING, findings=[
        Finding(Code.OVERFITTING, "val 0.4 is 40x train 0.01: the model memorizes")])
    figure = pictures.curves_figure(_rows(losses, [0.1, 0.1, 0.01, 0.001]), diagnosis)
    axes, lr_axes = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    for n, split in enumerate(("train", "val", "test")):
        assert list(lines[f"{split} loss"].get_ydata()) == [row[n] for row in losses]
    best = next(line for label, line in lines.items() if label.startswith("best epoch 3"))
    assert list(best.get_xdata()) == [3] and list(best.get_ydata()) == [0.3]
    assert axes.get_yscale() == "log"  # 2.2 down to 0.01 spans two decades
    assert lr_axes.get_yscale() == "log" and lr_axes.get_ylabel() == "learning rate"
    title = axes.get_title()
    assert "overfitting" in title and "memorizes" in title


def test_curves_stay_linear_and_single_axis_when_nothing_asks_otherwise():
    figure = pictures.curves_figure(_rows([(1.0, 1.1, 1.2), (0.8, 0.9, 1.0)], [0.1, 0.1]))
    assert len(figure.axes) == 1 and figure.axes[0].get_yscale() == "linear"
    assert figure.axes[0].get_title() == "no diagnosis"


def test_every_run_writes_curves_png(tmp_path, one_thread):
    run = train(tmp_path / "run", "trainer.epochs=3", "sched=cosine")
    image = imread(run / "curves.png")
    assert image.shape[:2] == (420, 700)  # figsize 7 x 4.2 at 100 dpi
    events = b"".join(p.read_bytes() for p in (run / "tb").glob("events.out.tfevents.*"))
    assert b"curves" in events  # the Images tab


def test_a_failing_picture_costs_the_run_nothing(tmp_path, monkeypatch, capsys, one_thread):
    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(pictures, "curves_figure", broken)
    run = train(tmp_path / "run", "trainer.epochs=2")
    assert json.loads((run / "summary.json").read_text())["status"] == "ok"
    assert (run / "diagnosis.json").is_file() and not (run / "curves.png").exists()
    assert "could not draw curves.png (RuntimeError: no fonts)" in capsys.readouterr().err


def test_sweep_figure_stars_the_best_and_marks_failed_and_pruned_jobs():
    jobs = [{"status": "ok", "objective": 0.9}, {"status": "ok", "objective": 0.3},
            {"status": "failed", "objective": None}, {"status": "pruned", "objective": None}]
    swept = {"optim.lr": [0.001, 0.01, 0.1, 1.0], "optim": ["sgd", "adam", "adam", "sgd"]}
    figure = pictures.sweep_figure(jobs, swept, best=1)
    lr_axes, optim_axes = figure.axes
    assert lr_axes.get_xscale() == "log" and optim_axes.get_xscale() == "linear"
    marks = {c.get_label(): c.get_offsets().tolist() for c in lr_axes.collections}
    assert marks["ok"] == [[0.001, 0.9], [0.01, 0.3]]
    assert marks["best"] == [[0.01, 0.3]]
    assert marks["failed"] == [[0.1, 0.9]] and marks["pruned"] == [[1.0, 0.9]]  # at the top
    assert [t.get_text() for t in optim_axes.get_xticklabels()] == ["adam", "sgd"]


@pytest.mark.parametrize("objective", [None, float("nan")])
def test_a_sweep_with_no_finished_job_still_draws(tmp_path, objective):
    jobs = [{"status": "failed", "objective": objective}]
    path = pictures.save_sweep(tmp_path, jobs, {"optim.lr": [0.1]}, best=None)
    assert imread(path).shape[:2] == (340, 420)
