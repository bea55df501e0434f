"""`dlrun -m follow=on ...` for real: a walk from experiment=model_bias reaches `good`, every
run is an ordinary job of the sweep, the path is kept in follow.json/.md/.png, the last
line reproduces the best run; bad input is one line; a cross-validation is judged on its
folds' means."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, dlrun_command, train
from hydra.core.global_hydra import GlobalHydra

from dlrun import cli
from dlrun.follow.outcome import read_outcome
from dlrun.records import Verdict, read_summary

QUIET = ["trainer.progress=off", "trainer.checkpoint=false"]


def follow(cwd: Path, *overrides: str) -> tuple[Path, str, str, int]:
    """`dlrun -m follow=on <overrides>` in-process: sweep dir, stdout, stderr, exit code."""
    sweep = cwd / "sweep"
    out, err, code = io.StringIO(), io.StringIO(), 0
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        patch.chdir(cwd)
        patch.setattr(sys, "argv", ["dlrun", "-m", "follow=on", *overrides, *QUIET,
                                    f"hydra.sweep.dir={sweep}"])
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code
        finally:
            GlobalHydra.instance().clear()
    return sweep, out.getvalue(), err.getvalue(), code


@pytest.fixture(scope="module")
def model_bias_walk(tmp_path_factory):
    return follow(tmp_path_factory.mktemp("follow"), "experiment=model_bias", "follow.width=1")


def test_a_walk_from_model_bias_reaches_good(model_bias_walk):
    sweep, printed, _, code = model_bias_walk
    record = json.loads((sweep / "follow.json").read_text())
    assert code == 0 and record["reached_good"] and record["stop"] == "good"
    assert record["start"]["verdict"] == "model_bias" and record["rounds_run"] >= 1
    assert record["settings"] == {"width": 1, "rounds": 4, "budget": None}
    best = record["rounds"][-1]["tried"][0]
    assert best["verdict"] == "good" and best["job"] == record["best_job"]
    assert best["losses"]["train"] < record["start"]["losses"]["train"]
    # the last line is the complete command of the best run, without the walk's own keys
    last = printed.strip().splitlines()[-1]
    assert last.endswith(record["command"]) and "follow" not in record["command"]
    assert record["command"].startswith("dlrun experiment=model_bias") and "model=mlp" in record["command"]


def test_every_run_of_the_walk_is_an_ordinary_job_of_the_sweep(model_bias_walk):
    sweep, _, _, _ = model_bias_walk
    record = json.loads((sweep / "follow.json").read_text())
    for run in [record["start"], *(t for r in record["rounds"] for t in r["tried"])]:
        job = sweep / str(run["job"])
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert overrides == run["overrides"] and not any(o.startswith("follow") for o in overrides)
        assert read_summary(job).status == "ok" and (job / "diagnosis.json").is_file()
    assert (sweep / "follow.png").stat().st_size > 0 and (sweep / "sweep_summary.json").is_file()
    md = (sweep / "follow.md").read_text()
    assert record["command"] in md and "| 1 | #1 ★ |" in md


def test_bad_knobs_and_sweeps_are_one_line_errors(tmp_path):
    _, _, err, code = follow(tmp_path, "follow.width=0")
    assert code == 2 and err.strip() == "dlrun: error: follow.width=0 is out of range: it must be >= 1."
    _, _, err, code = follow(tmp_path, "optim.lr=0.1,0.01")
    assert code == 2 and err.startswith("dlrun: error: follow=on starts from one run")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "sweep" / "0").exists()
    sweep, _, err, code = follow(tmp_path, "optim.lr=-1")  # your own run fails: nothing to follow
    assert code == 2 and err.strip().splitlines()[-1] == (
        "dlrun: error: your run failed, so there is nothing to follow: optim.lr=-1.0 is out of "
        "range: it must be a positive number, e.g. optim.lr=0.01.")
    assert json.loads((sweep / "follow.json").read_text())["stop"] == "failed"


def test_a_cross_validation_is_judged_on_the_means_of_its_folds(tmp_path):
    run_dir = train(tmp_path / "cv", "experiment=model_bias", "cv.folds=2", "trainer.epochs=20")
    outcome = read_outcome(run_dir)
    folds = [read_summary(run_dir / f"fold_{k}").final for k in range(2)]
    assert outcome.folds == 2 and outcome.verdict == Verdict.MODEL_BIAS
    assert outcome.loss("train") == pytest.approx(statistics.fmean(f.loss("train") for f in folds))
    assert outcome.objective == pytest.approx(outcome.loss("val"))
    assert all("cv.folds=2" in r.command for r in outcome.remedies)


@pytest.mark.slow
def test_the_command_line_walk_keeps_a_user_config_dir(tmp_path):
    """Once through the real `dlrun` process, with a `-cd` config directory of the user's."""
    mine = tmp_path / "conf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text((REPO / "conf" / "experiment" / "model_bias.yaml").read_text())
    done = dlrun_command("-m", "-cd", str(tmp_path / "conf"), "follow=on", "experiment=mine",
                         "follow.width=1", *QUIET, f"hydra.sweep.dir={tmp_path / 'sweep'}",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "sweep" / "follow.json").read_text())
    assert record["reached_good"]
    assert record["command"].startswith(f"dlrun -cd {tmp_path / 'conf'} experiment=mine")
    assert done.stdout.strip().splitlines()[-1].endswith(record["command"])
