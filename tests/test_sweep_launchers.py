"""Launchers: the same sweep run by joblib (parallel processes) and submitit_local (one process per job).

Each launcher starts fresh Python processes that import torch, so these tests are `slow`.
"""

from __future__ import annotations

import json

import pytest
from test_sweep import multirun

from dlrun.sweep.summary import SUMMARY_JSON

pytestmark = pytest.mark.slow


def finished_jobs(sweep) -> list[dict]:
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert summary["n_failed"] == 0, [j["error"] for j in summary["jobs"]]
    return summary["jobs"]


def test_joblib_runs_a_sweep_on_two_workers(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e '.[sweep]'")
    sweep, printed = multirun(
        tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optim.lr=0.1,0.03,0.01,0.003"
    )
    jobs = finished_jobs(sweep)
    assert sorted(j["job"] for j in jobs) == [0, 1, 2, 3]
    assert {o for j in jobs for o in j["overrides"] if o.startswith("optim.lr")} == {
        "optim.lr=0.1",
        "optim.lr=0.03",
        "optim.lr=0.01",
        "optim.lr=0.003",
    }
    assert "Joblib.Parallel(n_jobs=2" in printed or (sweep / "multirun.yaml").is_file()


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[sweep]'")
    sweep, _ = multirun(tmp_path, "hydra/launcher=local", "optim=sgd,adam")
    jobs = finished_jobs(sweep)
    assert len(jobs) == 2
    # submitit's own records: one folder per job with its stdout/stderr and pickled result
    logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2


def test_submitit_tasks_become_the_ranks_of_a_data_parallel_job(tmp_path):
    """hydra.launcher.tasks_per_node=2: two submitit tasks, one DDP job (what Slurm nodes do)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[sweep]'")
    from conftest import train
    from test_ddp import COMMON, assert_same_training, rows

    one = train(tmp_path / "one", *COMMON)
    sweep, _ = multirun(
        tmp_path,
        "hydra/launcher=local",
        "hydra.launcher.tasks_per_node=2",
        "trainer.devices=2",
        *COMMON,
    )
    (job,) = finished_jobs(sweep)
    summary = json.loads((sweep / job["dir"] / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert len(list((sweep / ".submitit").glob("*/*_1_log.out"))) == 1  # task 1 ran
    assert_same_training(rows(one), rows(sweep / job["dir"]))


def test_an_optuna_search_runs_its_batches_through_joblib_and_prunes_there(tmp_path):
    """Batches of 2 trials in two worker processes; each worker reports to its own trial
    (trial N = job N) in <sweep>/optuna.journal, and the pruner stops diverging trials there."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e '.[sweep]'")
    import optuna

    from dlrun.sweep.study import storage

    sweep, _ = multirun(tmp_path, "hparams_search=random", "hydra.sweeper.sampler.seed=0",
                        "hydra.sweeper.n_trials=6", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                        "optim=sgd", "optim.lr=choice(0.1,3.0)", "trainer.batch_size=32",
                        "optim.weight_decay=0", "trainer.epochs=4")
    trials = optuna.load_study(study_name=None, storage=storage(sweep)).trials
    assert len(trials) == 6
    for trial in trials:
        job = sweep / str(trial.number)
        status = json.loads((job / "summary.json").read_text())["status"]
        epochs = len((job / "metrics.jsonl").read_text().splitlines())
        assert f"optim.lr={trial.params['optim.lr']}" in (job / ".hydra/overrides.yaml").read_text()
        expected = ("PRUNED", "pruned") if epochs < 4 else ("COMPLETE", "ok")
        assert (trial.state.name, status) == expected
    assert any(t.state.name == "PRUNED" for t in trials)
