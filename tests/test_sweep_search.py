"""Optuna searches (hparams_search=tpe|random|cmaes|gp): trials, the study kept in its sweep
directory, explicit resuming, pruning, failures."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from test_sweep import JOB, multirun

from dlrun import cli
from dlrun.sweep.summary import SUMMARY_JSON

optuna = pytest.importorskip("optuna", reason="the sweep extra is not installed: pip install -e '.[sweep]'")

from dlrun.sweep.study import RESULTS_FILE, STUDY_FILE, storage  # noqa: E402  needs optuna


def study(sweep):
    return optuna.load_study(study_name=None, storage=storage(sweep))


def states(trials) -> list[str]:
    return sorted(t.state.name for t in trials)


def results(sweep) -> dict:
    return yaml.safe_load((sweep / RESULTS_FILE).read_text())


SMALL = ["hparams_search=tpe", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"]


def test_tpe_search_runs_six_trials_and_agrees_with_the_summary(tmp_path):
    sweep, printed = multirun(
        tmp_path,
        "hparams_search=tpe",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.sampler.n_startup_trials=3",
    )
    trials = study(sweep).trials
    assert states(trials) == ["COMPLETE"] * 6
    assert study(sweep).study_name == str(sweep)  # named after its sweep
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


def test_two_searches_never_see_each_others_trials(tmp_path):
    """Problem 1: a search on iris after one on digits, from the same directory, is its own
    study: its results, best and table come from its own trials only."""
    digits, _ = multirun(tmp_path, *SMALL, name="digits")
    iris, printed = multirun(tmp_path, *SMALL, "data=iris", "data.n_train=64", name="iris")
    assert len(study(digits).trials) == 2 and len(study(iris).trials) == 2
    assert study(digits).study_name != study(iris).study_name
    jobs = json.loads((iris / SUMMARY_JSON).read_text())["jobs"]
    assert results(iris)["best_value"] == pytest.approx(min(j["objective"] for j in jobs))
    assert f"optuna study best: {results(iris)['best_value']:.4f}" in printed
    assert not (tmp_path / "outputs").exists()  # nothing shared outside the sweep directories


def test_a_resumed_search_continues_its_own_study(tmp_path):
    """hparams_search.resume=<sweep dir> adds trials (and job directories) to that search only."""
    first, _ = multirun(tmp_path, *SMALL, name="first")
    before = study(first).trials
    other, _ = multirun(tmp_path, *SMALL, name="other")  # an unrelated search in between
    with pytest.MonkeyPatch.context() as patch:  # no hydra.sweep.dir: the resumed one is used
        patch.chdir(tmp_path)
        patch.setattr(sys, "argv", ["dlrun", "-m", *SMALL, *JOB, "hparams_search.resume=first"])
        try:
            cli.main()
        finally:
            GlobalHydra.instance().clear()
    trials = study(first).trials
    assert states(trials) == ["COMPLETE"] * 4 and len(study(other).trials) == 2
    assert [t.params for t in trials[:2]] == [t.params for t in before]
    assert sorted(p.name for p in first.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    assert results(first)["best_value"] == pytest.approx(min(t.value for t in trials))


@pytest.mark.parametrize(("change", "said"), [
    (["data=iris"], "its trials ran with (no such override), this one with data=iris"),
    (["optim.lr=tag(log, interval(1e-3, 1))"],
     "its search space differs in optim.lr"),
])
def test_resuming_a_different_search_is_refused(tmp_path, capsys, change, said):
    first, _ = multirun(tmp_path, *SMALL, name="first")
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        multirun(tmp_path, *SMALL, *change, f"hparams_search.resume={first}", name="first")
    err = capsys.readouterr().err
    assert refused.value.code == 2
    assert err.startswith("dlrun: error: hparams_search.resume=") and said in err
    assert len(err.strip().splitlines()) == 1
    assert len(study(first).trials) == 2  # the stored search is untouched


def test_pruning_stops_a_diverging_trial_early(tmp_path):
    """lr=3.0 diverges (val loss 3.5 after one epoch, 0.1's is 2.3): once two trials have
    finished, the median pruner stops each lr=3.0 trial after its first epoch, and the trial
    is PRUNED in the study and `pruned` in its run directory; lr=0.1 trials run all 4 epochs."""
    sweep, _ = multirun(
        tmp_path, "hparams_search=random", "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.n_jobs=1", "hydra.sweeper.n_trials=5", "optim=sgd",
        "optim.lr=choice(0.1,3.0)", "trainer.batch_size=32", "optim.weight_decay=0",
        "trainer.epochs=4",
    )
    trials = study(sweep).trials
    for trial in trials:
        job = sweep / str(trial.number)
        epochs = len((job / "metrics.jsonl").read_text().splitlines())
        status = json.loads((job / "summary.json").read_text())["status"]
        finished_before = sum(t.state.name == "COMPLETE" for t in trials[: trial.number])
        if trial.params["optim.lr"] == 3.0 and finished_before >= 2:
            assert (trial.state.name, status, epochs) == ("PRUNED", "pruned", 1)
        else:
            assert (trial.state.name, status, epochs) == ("COMPLETE", "ok", 4)
    assert any(t.state.name == "PRUNED" for t in trials)
    assert results(sweep)["n_pruned"] == sum(t.state.name == "PRUNED" for t in trials)


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
    trials = study(sweep).trials
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
    assert states(study(tmp_path / "sweep").trials) == ["FAIL", "FAIL"]
    assert results(tmp_path / "sweep")["n_fail"] == 2


@pytest.mark.slow
def test_an_interrupted_search_resumes(tmp_path):
    """Ctrl-C in the middle of a real `dlrun -m hparams_search=tpe`, then hparams_search.resume."""
    sweep = tmp_path / "search"
    command = [sys.executable, "-m", "dlrun", "-m", "hparams_search=tpe", "hydra.sweeper.n_jobs=1",
               "hydra.sweeper.n_trials=40", *JOB, "trainer.epochs=5", f"hydra.sweep.dir={sweep}"]
    search = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finished = ("COMPLETE", "PRUNED")

    def told() -> int:  # trials the study has recorded (a job's summary.json comes earlier)
        if not (sweep / STUDY_FILE).exists():
            return 0
        return sum(t.state.name in finished for t in study(sweep).trials)

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and search.poll() is None:
        time.sleep(0.2)
        if told() >= 2:
            break
    search.send_signal(signal.SIGINT)
    assert search.wait(timeout=120) != 0  # stopped, not finished
    done = [t for t in study(sweep).trials if t.state.name in finished]
    assert 2 <= len(done) < 40

    multirun(tmp_path, "hparams_search=tpe", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1",
             "trainer.epochs=5", f"hparams_search.resume={sweep}", name="search")
    trials = study(sweep).trials
    assert sum(t.state.name in finished for t in trials) == len(done) + 2
    assert results(sweep)["best_value"] == pytest.approx(
        min(t.value for t in trials if t.state.name == "COMPLETE"))


def test_the_search_space_speaks_the_optuna_plugins_syntax():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from dlrun.sweep.space import build_space

    space = build_space(
        {"optim.lr": "tag(log, interval(1e-4, 1e-1))", "optim.weight_decay": "interval(0.0, 1e-3)",
         "trainer.batch_size": "choice(16, 32)"},
        ["model.hidden=choice([64],[128,128])", "trainer.epochs=range(5,20,5)",
         "trainer.batch_size=tag(log, int(interval(16, 256)))", "optim.weight_decay=0", "data=iris"])
    d = space.distributions
    assert d["optim.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["trainer.batch_size"] == IntDistribution(16, 256, log=True)  # the command line's
    assert d["trainer.epochs"] == CategoricalDistribution([5, 10, 15])
    assert "optim.weight_decay" not in d  # fixed by a plain value
    hidden = d["model.hidden"].choices[1]
    assert space.overrides({"model.hidden": hidden, "optim.lr": 0.01}) == [
        "optim.weight_decay=0", "data=iris", "model.hidden=[128,128]", "optim.lr=0.01"]


def test_an_unknown_pruner_is_one_line():
    from dlrun.errors import UserError
    from dlrun.sweep.study import make_pruner

    with pytest.raises(UserError, match="hparams_search.pruner=bogus: choose median, hyperband or none"):
        make_pruner("bogus", 10)
    assert isinstance(make_pruner("hyperband", 10), optuna.pruners.HyperbandPruner)


def test_the_sweep_extra_is_current_optuna_without_old_pins():
    """Problem 2: no hydra-optuna-sweeper, no optuna<3 or sqlalchemy<2; Optuna 4+ runs the search."""
    import tomllib
    from conftest import REPO

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = " ".join(extras["sweep"] + extras["dev"]).lower()
    assert "hydra-optuna-sweeper" not in pins and "sqlalchemy" not in pins and "optuna<3" not in pins
    assert int(optuna.__version__.split(".")[0]) >= 4
