"""dlrun.log: what the terminal showed, without progress redraws (problem 8)."""

from __future__ import annotations

import io
import sys

from rich.console import Console
from rich.progress import Progress
from test_cli import run_cli

from dlrun.report.runlog import LOG_NAME, ScreenLog, logged_to


def test_a_live_bar_leaves_its_last_frame_only(tmp_path):
    """rich redraws a live bar with carriage returns, cursor-up and erase codes: the log keeps
    the lines printed above it and the bar's final state, once, without colour codes."""
    log = ScreenLog(tmp_path / LOG_NAME)
    console = Console(file=log, force_terminal=True, width=80)
    with Progress(console=console, refresh_per_second=1000, auto_refresh=False) as progress:
        task = progress.add_task("train", total=50)
        for step in range(50):
            progress.update(task, advance=1)
            progress.refresh()
            if step == 20:
                console.print("dlrun: warning: a line above the bar")
    console.print("[bold]the result table[/bold]")
    log.close()
    lines = (tmp_path / LOG_NAME).read_text().splitlines()
    assert lines.count("dlrun: warning: a line above the bar") == 1
    bars = [line for line in lines if line.startswith("train")]
    assert len(bars) == 1 and "100%" in bars[0]
    assert lines[-1] == "the result table" and "\x1b" not in "".join(lines)


def test_logged_to_copies_both_streams(tmp_path, monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with logged_to(tmp_path):
        print("table")
        print("dlrun: warning: w", file=sys.stderr)
    assert out.getvalue() == "table\n" and err.getvalue() == "dlrun: warning: w\n"
    assert (tmp_path / LOG_NAME).read_text() == "table\ndlrun: warning: w\n"


def test_every_run_directory_keeps_its_log(monkeypatch, tmp_path, capsys):
    """A run's result table and diagnosis, and a failed run's error line, are in its dlrun.log."""
    run = tmp_path / "ok"
    code, out, err = run_cli(monkeypatch, tmp_path, capsys, "trainer.epochs=2", "data.n_train=200",
                             "trainer.progress=lines", f"hydra.run.dir={run}")
    assert code == 0, err
    log = (run / LOG_NAME).read_text()
    assert "epoch 2/2" in log and "dlrun result:" in log and "Remedies" in log
    assert all(line.rstrip() in log for line in out.splitlines())
    bad = tmp_path / "bad"
    code, _, err = run_cli(monkeypatch, tmp_path, capsys, "data=sine", "loss=cross_entropy",
                           f"hydra.run.dir={bad}")
    assert code == 2
    assert (bad / LOG_NAME).read_text().strip() == err.strip()
