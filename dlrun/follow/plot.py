"""follow.png: each round as a step from its base to the run chosen, in the loss its branch
names (train for model bias and optimization, val for overfitting, test for mismatch), the
alternatives as grey points, and each run the walk stood on labelled with its verdict.

Rounds of different branches are measured in different losses, so each round is its own
segment in its own colour instead of one line that would join a train loss to a val loss.
"""

from __future__ import annotations

from pathlib import Path

from dlrun.follow.path import FollowPath, Run

COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}


def _label(ax, x: int, run: Run, y: float) -> None:
    verdict = run.outcome.verdict or "failed"
    ax.annotate(f"#{run.job} {verdict}", (x, y), textcoords="offset points", xytext=(5, 5),
                fontsize=8)


def plot_path(path: FollowPath, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    values = []
    shown = set()
    for round_ in path.rounds:
        quantity, x = round_.quantity, round_.number
        before = round_.base.value(quantity)
        others = [r.value(quantity) for r in round_.tried
                  if r is not round_.chosen and r.value(quantity) is not None]
        ax.scatter([x] * len(others), others, color="0.65", s=16, zorder=2,
                   label=None if "alt" in shown else "alternatives")
        shown.add("alt")
        values += others
        if before is None:
            continue
        after = round_.chosen.value(quantity) if round_.chosen is not None else None
        xs, ys = ([x - 1, x], [before, after]) if after is not None else ([x - 1], [before])
        ax.plot(xs, ys, "o-", color=COLOURS[quantity], zorder=3,
                label=None if quantity in shown else f"{quantity} loss")
        shown.add(quantity)
        values += ys
        _label(ax, x - 1, round_.base, before)
        if after is not None:
            _label(ax, x, round_.chosen, after)
    if not path.rounds:
        ax.text(0.5, 0.5, f"{path.stop}: {path.reason}", ha="center", va="center", wrap=True,
                transform=ax.transAxes, fontsize=9)
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xticks(range(len(path.rounds) + 1))
    ax.set_xlabel("round")
    ax.set_ylabel("the loss each round's branch names")
    ax.set_title(f"follow the map: {path.stop} ({len(path.runs)} runs)", fontsize=10)
    if shown:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
