"""Shared helpers: compose configs in-process and run real jobs into temporary directories."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir

from dlrun import cli  # noqa: F401  registers the schemas and resolvers
from dlrun.paths import config_dir

CONFIG_DIR = config_dir()
REPO = Path(__file__).resolve().parents[1]
# quiet, quick defaults for every in-process run
FAST = ["trainer.progress=off", "trainer.epochs=2"]


def compose(*overrides: str):
    """The config `dlrun <overrides>` would run, without running it."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def train(run_dir: Path, *overrides: str) -> Path:
    """Run one job in-process, as `dlrun <overrides>` would, into `run_dir`."""
    from dlrun.runner import run_job

    run_job(compose(*FAST, *overrides), run_dir=run_dir, overrides=list(overrides))
    return run_dir


def dlrun_command(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run the real `dlrun` command line in a subprocess (use sparingly: each pays torch's import)."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "dlrun", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture(autouse=True)
def _forget_hydra_job():
    """In-process `dlrun` calls leave Hydra's job config behind; no later test may read it."""
    yield
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().cfg = None


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and a busy shared machine cannot slow that one down."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
