"""Sweeps run in-process as `dlrun -m ...` would: the grid, its summary, failed jobs, HParams.

Every job is a real training run kept tiny: 1 epoch on 128 digits, no diagnosis probes,
no checkpoints.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from dlrun import cli
from dlrun.paths import config_dir
from dlrun.sweep.summary import SUMMARY_JSON, SUMMARY_MD
from dlrun.sweep.summary import main as summary_main

JOB = [
    "trainer.epochs=1",
    "trainer.progress=off",
    "diagnose=off",
    "data.n_train=128",
    "trainer.checkpoint=False",
]


def multirun(cwd: Path, *overrides: str, name: str = "sweep") -> tuple[Path, str]:
    """`dlrun -m <overrides>` in-process from `cwd`: the sweep directory and what it printed."""
    sweep = cwd / name
    keys = {o.split("=")[0] for o in overrides}
    defaults = [o for o in JOB if o.split("=")[0] not in keys]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.chdir(cwd)
        patch.setattr(
            sys, "argv", ["dlrun", "-m", *overrides, *defaults, f"hydra.sweep.dir={sweep}"]
        )
        try:
            cli.main()
        finally:
            GlobalHydra.instance().clear()
    return sweep, out.getvalue()


def job_summaries(sweep: Path) -> dict[tuple[str, ...], dict]:
    """Each job's own summary.json, keyed by the overrides that differ from JOB."""
    found = {}
    for path in sweep.glob("*/summary.json"):
        overrides = (path.parent / ".hydra" / "overrides.yaml").read_text().split("\n")
        key = tuple(o[2:] for o in overrides if o.startswith("- ") and o[2:] not in JOB)
        found[key] = json.loads(path.read_text())
    return found


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, str]:
    """A 2x3 grid: optim=sgd,adam x optim.lr=0.3,0.03,0.003."""
    return multirun(tmp_path_factory.mktemp("grid"), "optim=sgd,adam", "optim.lr=0.3,0.03,0.003")


def test_grid_summary_has_every_job_and_the_right_best(grid):
    sweep, printed = grid
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    expected = {
        (f"optim={o}", f"optim.lr={lr}")
        for o, lr in itertools.product(("sgd", "adam"), ("0.3", "0.03", "0.003"))
    }
    assert {tuple(o for o in j["overrides"] if o not in JOB) for j in summary["jobs"]} == expected
    assert summary["n_jobs"] == 6 and summary["n_failed"] == 0
    assert summary["swept"] == ["optim", "optim.lr"]

    # the best job is the one whose own summary.json holds the lowest val loss it returned
    own = {s["run_dir"]: s for s in job_summaries(sweep).values()}
    assert all(s["objective"] == s["final"]["val_loss"] for s in own.values())
    best_dir = min(own, key=lambda d: own[d]["objective"])
    best = next(j for j in summary["jobs"] if j["job"] == summary["best_job"])
    assert str(sweep / best["dir"]) == best_dir
    assert best["final"]["val_loss"] == own[best_dir]["final"]["val_loss"]

    # the table (terminal and markdown) marks that job and no other
    assert f"sweep {sweep}: 6 jobs" in printed and printed.count("★") == 2  # row + caption
    rows = [
        r
        for r in (sweep / SUMMARY_MD).read_text().splitlines()
        if r.startswith("| ") and not r.startswith("| ---")
    ]
    marked = [r for r in rows if "★" in r]
    assert len(rows) == 7 and len(marked) == 1
    assert " ".join(best["overrides"][:2]) in marked[0]


def test_dlrun_summary_rebuilds_an_earlier_sweep(grid, tmp_path, capsys):
    sweep = shutil.copytree(grid[0], tmp_path / "copy")
    original = json.loads((sweep / SUMMARY_JSON).read_text())
    (sweep / SUMMARY_JSON).unlink()
    (sweep / SUMMARY_MD).unlink()
    assert summary_main([str(sweep)]) == 0
    rebuilt = json.loads((sweep / SUMMARY_JSON).read_text())
    assert rebuilt["best_job"] == original["best_job"]
    assert [j["final"] for j in rebuilt["jobs"]] == [j["final"] for j in original["jobs"]]
    assert "★" in capsys.readouterr().out and (sweep / SUMMARY_MD).is_file()

    # the installed console script, and its one-line error for a directory with no jobs
    script = shutil.which("dlrun-summary") or str(Path(sys.executable).parent / "dlrun-summary")
    shown = subprocess.run([script, str(sweep), "--no-write"], capture_output=True, text=True)
    assert shown.returncode == 0 and "6 jobs" in shown.stdout
    empty = subprocess.run([script, str(tmp_path / "nothing")], capture_output=True, text=True)
    assert empty.returncode == 2 and "holds no sweep jobs" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1


def test_failed_jobs_are_recorded_and_the_sweep_goes_on(tmp_path):
    # lr=1e30 makes the loss non-finite; data.n_train=99999 is more than digits has (a UserError)
    sweep, printed = multirun(tmp_path, "optim=sgd", "optim.lr=0.05,1e30", "data.n_train=64,99999")
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    jobs = {
        tuple(
            o.replace("1e+30", "1e30")
            for o in j["overrides"]  # Hydra writes 1e+30
            if o.startswith(("optim.lr", "data.n"))
        ): j
        for j in summary["jobs"]
    }
    assert len(jobs) == 4 and summary["n_failed"] == 3
    good = jobs[("optim.lr=0.05", "data.n_train=64")]
    assert good["status"] == "ok" and summary["best_job"] == good["job"]
    diverged = jobs[("optim.lr=1e30", "data.n_train=64")]
    assert diverged["status"] == "failed" and "non-finite" in diverged["error"]
    for lr in ("0.05", "1e30"):
        too_many = jobs[(f"optim.lr={lr}", "data.n_train=99999")]
        assert too_many["status"] == "failed" and "data.n_train=99999" in too_many["error"]
        assert "\n" not in too_many["error"]
    # the reason is in the job's own summary.json too, and in the table
    own = json.loads((sweep / diverged["dir"] / "summary.json").read_text())
    assert own["status"] == "failed" and "non-finite" in own["error"]
    assert printed.count("failed: ") == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboard_hparams_compares_the_jobs(grid):
    """A real TensorBoard server over the sweep returns every job's hparams and final metrics."""
    sweep, _ = grid
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(sweep),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--load_fast",
            "false",
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin/hparams"
    statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
    query = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "allowedStatuses": statuses}
    try:
        groups, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                groups = _post(f"{base}/session_groups", query).get("sessionGroups", [])
            except OSError:  # not listening yet
                pass
            if len(groups) == 6:
                break
            time.sleep(1)
        experiment = _post(f"{base}/experiment", {"experimentName": ""})
        root = f"http://127.0.0.1:{port}/data/plugin"
        with urllib.request.urlopen(f"{root}/scalars/tags", timeout=10) as response:
            scalar_tags = json.loads(response.read())
        with urllib.request.urlopen(f"{root}/custom_scalars/layout", timeout=10) as response:
            layout = json.loads(response.read())
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert len(groups) == 6
    hparam_names = [h["name"] for h in experiment["hparamInfos"]]
    assert {"optim", "optim.lr", "trainer.batch_size"} <= set(hparam_names)
    assert set(hparam_names[:2]) == {"optim", "optim.lr"}  # what the sweep varied comes first
    metric_names = [
        (m["name"].get("group", ""), m["name"]["tag"]) for m in experiment["metricInfos"]
    ]
    assert {("train", "loss"), ("val", "loss"), ("test", "loss"), ("val", "metric/acc")} <= set(
        metric_names
    )
    # the HPARAMS table shows the first five metrics: the losses are among them
    assert {("train", "loss"), ("val", "loss"), ("test", "loss")} <= set(metric_names[:5])

    # one TensorBoard run per split, each named by its job's number and overrides
    assert len(scalar_tags) == 18 and {r.rsplit("/", 1)[-1] for r in scalar_tags} == {
        "train", "val", "test"}
    for run, tags in scalar_tags.items():
        job, tb, label, split = run.split("/")
        assert job.isdigit() and tb == "tb" and "optim.lr=" in label and "optim=" in label
        assert {"loss", "metric/acc"} <= set(tags)
        assert ("optim/lr" in tags) == (split == "train")
    # the custom-scalars layout: the loss of every split first, then the task metric
    charts = [c["title"] for c in layout["category"][0]["chart"]]
    assert charts[:2] == ["loss: train / val / test", "acc: train / val / test"]

    own = job_summaries(sweep)
    seen = set()
    for group in groups:
        hp = group["hparams"]
        key = (f"optim={hp['optim']}", f"optim.lr={hp['optim.lr']:g}")
        final = own[key]["final"]
        values = {
            (m["name"].get("group", ""), m["name"]["tag"]): m["value"]
            for m in group["sessions"][0]["metricValues"]
        }
        assert math.isclose(values[("val", "loss")], final["val_loss"], rel_tol=1e-5)
        assert math.isclose(values[("test", "metric/acc")], final["test_acc"], rel_tol=1e-5)
        seen.add(key)
    assert seen == set(own)


STUDIES = ["study_batch", "study_optimizers", "study_schedules", "study_model_size"]


@pytest.mark.parametrize("study", STUDIES)
def test_every_job_of_a_study_composes_and_validates(study):
    """Each value a study sweeps composes with its preset into a valid config (no training)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from dlrun.config import validate

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        params = compose("config", [f"experiment={study}"], return_hydra_config=True)
        params = params.hydra.sweeper.params
        assert params, f"{study} sweeps nothing"
        for key, values in params.items():
            (override,) = OverridesParser.create().parse_overrides([f"{key}={values}"])
            choices = list(override.sweep_string_iterator())
            assert len(choices) >= 3
            for value in choices:
                validate(compose("config", [f"experiment={study}", f"{key}={value}"]))


@pytest.mark.parametrize(("search", "sampler"), [("tpe", "TPESampler"), ("random", "RandomSampler"),
                                                 ("cmaes", "CmaEsSampler"), ("gp", "GPSampler")])
def test_search_presets_compose(search, sampler):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", [f"hparams_search={search}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSearch") and sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == f"optuna.samplers.{sampler}"
    assert cfg.hparams_search.pruner == "median" and cfg.hparams_search.resume is None
    assert set(sweeper.params) == {"optim.lr", "optim.weight_decay", "trainer.batch_size"}
