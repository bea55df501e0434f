"""The runner's steps: the job chosen from one table, and a training run that writes its
summary before the diagnosis, so a crash there never costs the run its summary."""

from conftest import compose, train

from dlrun.records import read_diagnosis, read_summary
from dlrun.runner import JOBS, job_kind


def test_the_job_comes_from_the_mode_and_cv_folds():
    assert set(JOBS) == {"train", "lr_find", "cv", "eval"}
    assert job_kind(compose(), data=None) == "train"
    assert job_kind(compose("mode=lr_find"), data=None) == "lr_find"
    assert job_kind(compose("mode=eval"), data=None) == "eval"
    assert job_kind(compose("cv.folds=3"), data=None) == "cv"
    assert job_kind(compose("cv.folds=3"), data=object()) == "train"  # one fold of it


def test_a_crash_in_the_diagnosis_leaves_the_run_and_warns(run_dir, monkeypatch, one_thread, capsys):
    def crash(*args, **kwargs):
        raise RuntimeError("the diagnosis crashed")

    monkeypatch.setattr("dlrun.recipe.diagnose_run", crash)
    train(run_dir, "data.n_train=200")  # the run itself succeeded: no exception
    warning = capsys.readouterr().err.strip().splitlines()
    assert warning == [f"dlrun: warning: the diagnosis failed (RuntimeError: the diagnosis "
                       f"crashed); the run's files in {run_dir} are complete; rerun with "
                       "diagnose=off to skip it"]
    summary = read_summary(run_dir)
    assert summary.status == "ok" and summary.final.epoch == 2 and summary.verdict is None
    assert summary.objective == summary.final.loss("val")
    assert not (run_dir / "diagnosis.json").exists()


def test_the_verdict_joins_the_summary_once_diagnosed(run_dir, one_thread):
    train(run_dir, "data.n_train=200")
    assert read_summary(run_dir).verdict == read_diagnosis(run_dir).verdict
