"""The Ray launcher against a local Ray instance.

hydra-ray-launcher 1.2.2 needs cloudpickle<3 while joblib>=1.6 needs cloudpickle>=3, so
Ray lives in its own extra and virtualenv: `scripts/ray_venv.sh --test` builds it on top
of the main one and runs this file. In the main virtualenv it is skipped.
"""

from __future__ import annotations

import json

import pytest
from test_sweep import multirun

from dlrun.sweep.summary import SUMMARY_JSON

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_ray_runs_a_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip(
        "hydra_plugins.hydra_ray_launcher",
        reason="Ray has its own virtualenv (cloudpickle<3): run scripts/ray_venv.sh --test",
    )
    ray = pytest.importorskip("ray")
    try:
        sweep, printed = multirun(
            tmp_path,
            "hydra/launcher=ray",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
            "optim=sgd,adam",
        )
    finally:
        ray.shutdown()
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 2 and summary["n_failed"] == 0
    assert {j["overrides"][0] for j in summary["jobs"]} == {"optim=sgd", "optim=adam"}
    assert "Ray Launcher is launching 2 jobs" in printed or (sweep / "multirun.yaml").is_file()
