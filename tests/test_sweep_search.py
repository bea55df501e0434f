"""Optuna searches (hparams_search=tpe|random): trials, the SQLite study, resuming, failures."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from test_sweep import JOB, multirun

from dlrun.sweep.summary import SUMMARY_JSON

optuna = pytest.importorskip(
    "optuna", reason="the sweep extra is not installed: pip install -e '.[sweep]'"
)


def study(cwd, name="tpe"):
    return optuna.load_study(
        study_name=name, storage=f"sqlite:///{cwd / 'outputs' / 'optuna' / name}.db"
    )


def states(trials) -> list[str]:
    return sorted(t.state.name for t in trials)


def test_tpe_search_runs_six_trials_and_agrees_with_the_summary(tmp_path):
    sweep, printed = multirun(
        tmp_path,
        "hparams_search=tpe",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.sampler.n_startup_trials=3",
    )
    trials = study(tmp_path).trials
    assert states(trials) == ["COMPLETE"] * 6
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 6 and summary["n_failed"] == 0
    # the study minimized what the jobs returned; its best trial is the summary's best job
    objectives = sorted(j["objective"] for j in summary["jobs"])
    assert sorted(t.value for t in trials) == pytest.approx(objectives)
    best = next(j for j in summary["jobs"] if j["job"] == summary["best_job"])
    assert summary["optuna"]["best_value"] == pytest.approx(best["objective"])
    for key, value in summary["optuna"]["best_params"].items():
        assert any(
            o.startswith(f"{key}=") and math.isclose(float(o.split("=")[1]), value)
            for o in best["overrides"]
        )
    assert "optuna study best" in printed and "setup plugin" not in printed


def test_rerunning_a_search_continues_its_study(tmp_path):
    """The same command again adds trials to the study in outputs/optuna/<name>.db."""
    search = [
        "hparams_search=tpe",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
    ]
    multirun(tmp_path, *search, name="first")
    first = study(tmp_path).trials
    second_sweep, _ = multirun(tmp_path, *search, name="second")
    trials = study(tmp_path).trials
    assert states(trials) == ["COMPLETE"] * 4
    assert [t.params for t in trials[:2]] == [t.params for t in first]
    # the resumed run saw the first two: its best is the best of all four trials
    results = json.loads((second_sweep / SUMMARY_JSON).read_text())["optuna"]
    assert results["best_value"] == pytest.approx(min(t.value for t in trials))


def test_failed_trials_count_as_failed_and_the_search_goes_on(tmp_path):
    """lr=1e30 diverges: those trials are FAIL in the study, the others COMPLETE, all rows shown."""
    sweep, _ = multirun(
        tmp_path,
        "hparams_search=random",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=1.0",
        "optim=sgd",
        "optim.lr=choice(0.05,1e30)",
    )
    trials = study(tmp_path, "random").trials
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 4
    failed = [j for j in summary["jobs"] if j["status"] == "failed"]
    assert states(trials) == sorted(["FAIL"] * len(failed) + ["COMPLETE"] * (4 - len(failed)))
    assert 1 <= len(failed) <= 3  # the seed draws both learning rates
    assert all("non-finite" in j["error"] for j in failed)
    assert all(
        any(o in ("optim.lr=1e+30", "optim.lr=1e30") for o in j["overrides"]) for j in failed
    )


def test_a_search_stops_when_a_whole_batch_fails(tmp_path):
    """max_failure_rate=0.5 of the presets: both trials of the first batch fail, the search ends."""
    with pytest.raises(SystemExit) as stopped:
        multirun(
            tmp_path,
            "hparams_search=random",
            "hydra.sweeper.n_trials=6",
            "optim=sgd",
            "optim.lr=1e30",
        )
    assert stopped.value.code == 3
    assert states(study(tmp_path, "random").trials) == ["FAIL", "FAIL"]


@pytest.mark.slow
def test_an_interrupted_search_resumes(tmp_path):
    """Ctrl-C in the middle of a real `dlrun -m hparams_search=tpe`, then the same command again."""
    command = [
        sys.executable,
        "-m",
        "dlrun",
        "-m",
        "hparams_search=tpe",
        "hydra.sweeper.n_jobs=1",
        "hydra.sweeper.n_trials=40",
        *JOB,
        "trainer.epochs=5",
    ]
    db = tmp_path / "outputs" / "optuna" / "tpe.db"
    search = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 240
    complete = 0
    while time.monotonic() < deadline and search.poll() is None and complete < 2:
        time.sleep(0.2)
        if db.is_file():
            with sqlite3.connect(db) as connection:
                complete = connection.execute(
                    "select count(*) from trials where state = 'COMPLETE'"
                ).fetchone()[0]
    search.send_signal(signal.SIGINT)
    assert search.wait(timeout=120) != 0  # stopped, not finished
    interrupted = study(tmp_path).trials
    done = [t for t in interrupted if t.state.name == "COMPLETE"]
    assert 2 <= len(done) < 40

    sweep, _ = multirun(tmp_path, "hparams_search=tpe", "hydra.sweeper.n_trials=2")
    trials = study(tmp_path).trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == len(done) + 2
    results = json.loads((sweep / SUMMARY_JSON).read_text())["optuna"]
    assert results["best_value"] == pytest.approx(
        min(t.value for t in trials if t.state.name == "COMPLETE")
    )
