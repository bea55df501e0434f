"""The scenario presets land on their branch of the map for several seeds, and the first
remedy, run as printed, moves the run toward `good`. Real runs, in-process, on the CPU."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import compose, train

from dlrun.config import validate
from dlrun.errors import RunFailed
from dlrun.overrides import value_of
from dlrun.records import Verdict
from dlrun.runner import run_job

PRESETS = ("good", "model_bias", "optimization", "overfitting", "mismatch")
SEEDS = (0, 1, 2)
# what the first remedy must lower, per branch
IMPROVES = {
    "model_bias": "train_loss",
    "optimization": "train_loss",
    "overfitting": "val_loss",
    "mismatch": "test_loss",
}

_runs: dict[tuple[str, ...], Path] = {}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`dlrun <overrides>` in-process (cached per module), returning its run directory."""

    def go(*overrides: str) -> Path:
        if overrides not in _runs:
            run_dir = tmp_path_factory.mktemp("run")
            cfg = compose("trainer.progress=off", "trainer.checkpoint=false", *overrides)
            run_job(cfg, run_dir=run_dir, overrides=list(overrides))
            _runs[overrides] = run_dir
        return _runs[overrides]

    return go


def read(run_dir: Path, name: str):
    return json.loads((run_dir / name).read_text())


def final(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_gets_its_verdict(run, preset, seed):
    run_dir = run(f"experiment={preset}", f"trainer.seed={seed}")
    diagnosis = read(run_dir, "diagnosis.json")
    assert diagnosis["verdict"] == preset, [f["message"] for f in diagnosis["findings"]]
    assert read(run_dir, "summary.json")["verdict"] == preset


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "good"])
def test_first_remedy_moves_the_run_toward_good(run, preset):
    before = run(f"experiment={preset}", "trainer.seed=0")
    first = read(before, "diagnosis.json")["remedies"][0]["command"]
    args = shlex.split(first)
    assert args[:2] == ["dlrun", f"experiment={preset}"]  # the user's own overrides come first
    after = run(*args[1:])
    metric = IMPROVES[preset]
    assert final(after)[metric] < 0.9 * final(before)[metric], first


def test_diagnosis_json_schema_and_runnable_remedies(run):
    for preset in PRESETS:
        run_dir = run(f"experiment={preset}", "trainer.seed=0")
        d = read(run_dir, "diagnosis.json")
        assert d["verdict"] in set(Verdict)
        assert d["findings"] and all(
            isinstance(f["code"], str)
            and isinstance(f["message"], str)
            and isinstance(f["evidence"], dict)
            for f in d["findings"]
        )
        assert all(
            {"action", "command"} <= set(r) <= {"action", "command", "expect"}
            and r["command"].startswith("dlrun ")
            for r in d["remedies"]
        )
        assert [s["node"] for s in d["path"]][0] == "train_large"
        assert {"trivial_s", "references_s", "total_s", "train_s"} <= set(d["cost"])
        for r in d["remedies"]:
            validate(compose(*shlex.split(r["command"])[1:]))
    assert read(run("experiment=good", "trainer.seed=0"), "diagnosis.json")["remedies"] == []


def test_optimization_preset_says_where_it_is_stuck(run):
    d = read(run("experiment=optimization", "trainer.seed=0"), "diagnosis.json")
    codes = {f["code"] for f in d["findings"]}
    assert {"simpler_model_better", "vanishing_gradients"} <= codes
    assert d["stuck"] in ("saddle_point", "local_minimum")
    assert d["remedies"][0]["command"].endswith("model.batchnorm=true")


def test_diagnose_full_tracks_curvature_and_tests_the_escape(run):
    run_dir = run("experiment=optimization", "diagnose=full", "trainer.epochs=5")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "hessian_max" in rows[4] and "hessian_min" in rows[4] and "hessian_max" not in rows[3]
    d = read(run_dir, "diagnosis.json")
    cp, escape = d["evidence"]["critical_point"], d["evidence"]["escape"]
    assert cp["lambda_min"] < 0 < cp["lambda_max"]
    assert escape["loss_after"] < escape["loss_before"]
    assert "saddle_escape" in {f["code"] for f in d["findings"]}


def test_diagnose_off_skips_everything(run_dir):
    train(run_dir, "diagnose=off")
    assert not (run_dir / "diagnosis.json").exists()
    assert "verdict" not in read(run_dir, "summary.json")


def test_a_run_whose_loss_blows_up_is_an_optimization_issue(run_dir):
    with pytest.raises(RunFailed):
        train(run_dir, "optim=sgd", "optim.lr=1e6", "model.hidden=[16]")
    d = read(run_dir, "diagnosis.json")
    assert d["verdict"] == "optimization" and d["stuck"] == "exploding_gradients"
    assert "nonfinite_loss" in {f["code"] for f in d["findings"]}
    # the first remedy is the step the curvature at a fresh start allows: 1 / lambda_max
    curvature = d["evidence"]["initial_curvature"]
    first = shlex.split(d["remedies"][0]["command"])
    lr = float(value_of(first[1:], "optim.lr"))
    assert first[:2] == ["dlrun", "optim=sgd"] and "model.hidden=[16]" in first
    assert lr == pytest.approx(1 / curvature, rel=0.01) and lr < 1e6
