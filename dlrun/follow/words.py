"""The walk in words: one formatting of a run, a round and the stop, shared by the terminal
tree and follow.md so that both say the same thing."""

from __future__ import annotations

from dlrun.follow.path import FollowPath, Round, Run
from dlrun.records import SPLITS


def describe(run: Run, quantity: str | None = None) -> str:
    """`#3 overfitting, val loss 0.912` or `#3 failed: <why>`."""
    name = f"#{run.job}" if run.job is not None else "not launched"
    out = run.outcome
    if not out.ok:
        return f"{name} failed: {out.error}"
    verdict = str(out.verdict) if out.verdict is not None else "not diagnosed"
    value = run.value(quantity) if quantity else None
    return f"{name} {verdict}" + (f", {quantity} loss {value:.4g}" if value is not None else "")


def verdict_text(run: Run) -> str:
    out = run.outcome
    if not out.ok:
        return f"failed: {out.error}"
    if out.verdict is None:
        return "not diagnosed"
    return str(out.verdict) + (f" ({out.stuck})" if out.stuck else "")


def losses_text(run: Run) -> str:
    """`train 0.0123 · val 0.412 · test 0.398` (CV: the means over the folds)."""
    parts = [f"{s} {run.value(s):.4g}" for s in SPLITS if run.value(s) is not None]
    folds = f" (mean of {run.outcome.folds} folds)" if run.outcome.folds else ""
    return " · ".join(parts) + folds


def run_title(run: Run) -> str:
    what = "your run" if run.action is None else run.action
    changed = f" [{' '.join(run.changes)}]" if run.changes else ""
    name = f"#{run.job}" if run.job is not None else "(not launched)"
    numbers = losses_text(run)
    return f"{name} {what}{changed} -> {verdict_text(run)}" + (f" · {numbers}" if numbers else "")


def round_title(round_: Round) -> str:
    before = round_.base.value(round_.quantity)
    value = f" {before:.4g}" if before is not None else ""
    return (f"round {round_.number}: the remedies of #{round_.base.job} ({round_.branch}), "
            f"judged by its {round_.quantity} loss{value}")


def headline(path: FollowPath) -> str:
    rounds = sum(1 for r in path.rounds if r.tried)
    return (f"Follow the map: {rounds} round(s), {len(path.runs)} run(s), "
            f"{path.wall_time_s:.0f} s: {path.stop}")


def final_line(path: FollowPath) -> str:
    best = path.best
    return f"the best run (#{best.job}, {verdict_text(best)}): {path.command}"
