"""The walk as a rich tree on the terminal: each round, its base's verdict and the numbers
that decided it, the remedy chosen (★) and the alternatives with their outcomes."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from dlrun.follow.path import FollowPath, Run
from dlrun.follow.words import final_line, headline, round_title, run_title


def _run_node(parent: Tree, run: Run, mark: str = "", reasons: bool = False) -> Tree:
    node = parent.add(f"{mark}{escape(run_title(run))}", style="bold" if mark else None)
    if reasons:
        for line in run.outcome.because:
            node.add(escape(line), style="dim")
    return node


def path_tree(path: FollowPath) -> Tree:
    tree = Tree(f"[bold]{escape(headline(path))}[/]")
    _run_node(tree, path.start, reasons=True)
    for round_ in path.rounds:
        branch = tree.add(escape(round_title(round_)))
        for run in round_.tried:
            chosen = run is round_.chosen
            _run_node(branch, run, "★ " if chosen else "  ", reasons=chosen)
        for skipped in round_.skipped:
            branch.add(escape(f"skipped: {skipped.remedy.action} ({skipped.reason})"), style="dim")
    tree.add(f"[bold]{escape(path.reason)}[/]")
    return tree


def print_path(path: FollowPath, sweep_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    console.print(path_tree(path))
    console.print(f"follow.json, follow.md, follow.png in {sweep_dir}")
    console.print(escape(final_line(path)), soft_wrap=True)
