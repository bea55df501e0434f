"""A non-editable install (a built wheel) works from any directory, configs included."""

import subprocess
import sys

from conftest import REPO


def test_wheel_install_runs_outside_the_repository(tmp_path):
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("dlrun-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    assert (target / "dlrun" / "conf" / "config.yaml").is_file()
    assert (target / "hydra_plugins" / "dlrun_stacked_launcher" / "stacked_launcher.py").is_file()

    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    where = subprocess.run([sys.executable, "-c", "import dlrun; print(dlrun.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))  # not the editable checkout
    result = subprocess.run(
        [sys.executable, "-m", "dlrun", "trainer.epochs=1", "data.n_train=100", "trainer.progress=off"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(elsewhere.glob("outputs/runs/*/*/summary.json"))) == 1
