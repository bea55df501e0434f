"""The Hydra callback that compares a sweep's jobs once the multirun ends.

Enabled for every dlrun run in conf/config.yaml (`hydra.callbacks.sweep_summary`);
single runs never reach `on_multirun_end`, so they pay nothing for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    """Write sweep_summary.json / .md into the sweep directory and print the table."""

    def __init__(self, print_table: bool = True):
        self.print_table = print_table

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dlrun.sweep.summary import job_dirs, print_summary, summarize_sweep, write_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir() or not job_dirs(sweep_dir):
            return
        summary = summarize_sweep(sweep_dir)
        write_summary(summary, sweep_dir)
        if self.print_table:
            print_summary(summary)
