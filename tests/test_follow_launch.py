"""The follow sweeper's launch: each job composed first (a remedy that does not compose is
recorded as failed and never launched), the rest launched as one batch through the
launcher, numbered on from the previous batch, each read back from its job directory."""

from __future__ import annotations

from types import SimpleNamespace

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dlrun.follow.sweep import HydraLaunch
from dlrun.records import Diagnosis, EpochRow, Summary, Verdict
from dlrun.report.files import write_json


class Loader:
    def load_sweep_config(self, master_config, sweep_overrides):
        if "model=nonesuch" in sweep_overrides:
            raise ConfigCompositionException("Could not find 'model/nonesuch'")


class Launcher:
    """Writes each job's records as a finished run would, or fails it without any."""

    def __init__(self, sweep_dir):
        self.sweep_dir, self.batches = sweep_dir, []

    def launch(self, batch, initial_job_idx):
        self.batches.append((list(batch), initial_job_idx))
        returns = []
        for k, overrides in enumerate(batch):
            job_dir = self.sweep_dir / str(initial_job_idx + k)
            hydra = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(job_dir)}}})
            if "trainer.epochs=0" in overrides:  # a crash before any file was written
                returns.append(JobReturn(hydra_cfg=hydra, status=JobStatus.FAILED,
                                         _return_value=RuntimeError("killed")))
                continue
            job_dir.mkdir(parents=True)
            row = EpochRow(epoch=1, splits={s: {"loss": 0.5} for s in ("train", "val", "test")})
            write_json(job_dir / "summary.json", Summary(final=row, objective=0.5).to_json())
            write_json(job_dir / "diagnosis.json", Diagnosis(Verdict.GOOD).to_json())
            returns.append(JobReturn(hydra_cfg=hydra, status=JobStatus.COMPLETED, _return_value=0.5))
        return returns


def test_a_batch_is_composed_first_then_launched_and_numbered_on(tmp_path):
    launcher = Launcher(tmp_path)
    sweeper = SimpleNamespace(hydra_context=SimpleNamespace(config_loader=Loader()),
                              config=OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}),
                              launcher=launcher)
    launch = HydraLaunch(sweeper)
    [start] = launch([["model=mlp"]])
    runs = launch([["model=cnn"], ["model=nonesuch"], ["trainer.epochs=0"]])
    assert start.job == 0 and start.outcome.good and start.dir == str(tmp_path / "0")
    assert [r.job for r in runs] == [1, None, 2]
    assert launcher.batches[1] == ([["model=cnn"], ["trainer.epochs=0"]], 1)  # never the bad one
    assert runs[1].outcome.error.startswith("does not compose: ConfigCompositionException")
    assert runs[2].outcome.error == "RuntimeError: killed" and not runs[2].outcome.ok
    assert len(launch.returns) == 2
