"""follow.json, follow.md and follow.png in the sweep directory: the walk, kept."""

from __future__ import annotations

from pathlib import Path

from dlrun.follow.path import FollowPath, Run
from dlrun.follow.plot import plot_path
from dlrun.follow.words import final_line, headline, round_title, verdict_text
from dlrun.records import SPLITS
from dlrun.report.files import write_json

FOLLOW_JSON, FOLLOW_MD, FOLLOW_PNG = "follow.json", "follow.md", "follow.png"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(round_number: int, run: Run, mark: str) -> str:
    losses = [f"{run.value(s):.4g}" if run.value(s) is not None else "-" for s in SPLITS]
    changes = f"`{' '.join(run.changes)}`" if run.changes else ""
    job = f"#{run.job}" if run.job is not None else "-"
    return ("| " + " | ".join([str(round_number), job + mark, _cell(run.action or "your run"),
                               _cell(changes), _cell(verdict_text(run)), *losses]) + " |")


def markdown(path: FollowPath) -> str:
    lines = [f"# {headline(path)}", "", path.reason, "",
             "| round | job | remedy | changes | verdict | train loss | val loss | test loss |",
             "|---|---|---|---|---|---|---|---|", _row(0, path.start, "")]
    for round_ in path.rounds:
        lines += [_row(round_.number, run, " ★" if run is round_.chosen else "")
                  for run in round_.tried]
    lines += ["", "★: the run the walk continued from.", ""]
    bases = [path.start, *(r.chosen for r in path.rounds if r.chosen is not None)]
    for round_ in path.rounds:
        lines.append(f"- {round_title(round_)}")
        lines += [f"  - skipped: {s.remedy.action} ({s.reason})" for s in round_.skipped]
    lines += ["", "## Why: the map's answers for each run the walk continued from", ""]
    for run in bases:
        lines.append(f"- #{run.job} ({verdict_text(run)})")
        lines += [f"  - {_cell(line)}" for line in run.outcome.because]
    lines += ["", "## Reproduce", "", final_line(path).split(": ", 1)[0] + ":", "",
              f"    {path.command}", ""]
    return "\n".join(lines)


def write_path(path: FollowPath, sweep_dir: Path) -> None:
    sweep_dir = Path(sweep_dir)
    write_json(sweep_dir / FOLLOW_JSON, path.to_json())
    (sweep_dir / FOLLOW_MD).write_text(markdown(path))
    plot_path(path, sweep_dir / FOLLOW_PNG)
