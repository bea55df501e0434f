"""follow.png: the branch's quantity per round, each run the walk tried, each round's verdict.

The x axis is the round; the line joins the runs the walk continued from, each drawn at
the quantity its round was judged by (round 0: the one your run's branch names), and
labelled with its verdict; the alternatives of a round are the faint points beside it.
"""

from __future__ import annotations

from pathlib import Path

from dlrun.follow.outcome import QUANTITY
from dlrun.follow.path import FollowPath, Run


def _quantity_of(run: Run) -> str:
    return QUANTITY.get(run.outcome.verdict, "val")


def plot_path(path: FollowPath, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys, labels = [], [], []
    first = _quantity_of(path.start)
    if path.start.value(first) is not None:
        xs.append(0), ys.append(path.start.value(first))
        labels.append(f"#{path.start.job} {path.start.outcome.verdict or 'failed'}\n({first} loss)")
    for round_ in path.rounds:
        quantity = round_.quantity
        others = [r for r in round_.tried if r is not round_.chosen and r.value(quantity) is not None]
        ax.scatter([round_.number] * len(others), [r.value(quantity) for r in others],
                   color="0.6", s=18, zorder=2, label="alternatives" if round_.number == 1 else None)
        chosen = round_.chosen
        if chosen is not None and chosen.value(quantity) is not None:
            xs.append(round_.number), ys.append(chosen.value(quantity))
            labels.append(f"#{chosen.job} {chosen.outcome.verdict}\n({quantity} loss)")
    ax.plot(xs, ys, "o-", color="tab:blue", zorder=3, label="the walk")
    for x, y, label in zip(xs, ys, labels):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if ys and min(ys) > 0 and max(ys) / min(ys) > 20:
        ax.set_yscale("log")
    ax.set_xticks(range(len(path.rounds) + 1))
    ax.set_xlabel("round")
    ax.set_ylabel("the branch's loss (train | val | test)")
    ax.set_title(f"follow the map: {path.stop}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
