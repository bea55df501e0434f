"""The walk itself: run your command, follow the first `width` remedies of its diagnosis as
one batch, continue from the best of them, and stop on one of the rules of `Stop`.

`launch` runs a batch (a list of override lists) and returns one `Run` each, numbered as
the launcher numbered them; it is the only thing the walk knows about Hydra, so tests
drive the walk with prepared records. The best of a batch is the one with the lowest
quantity its base's branch names (`QUANTITY`), ties broken by the job's objective; a
`good` run ends the walk at once (the best good one, by the same order).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from dlrun.follow.commands import canonical, changes, remedy_overrides
from dlrun.follow.measurement import measured_keys
from dlrun.follow.outcome import QUANTITY
from dlrun.follow.path import FollowPath, Round, Run, Skipped, Stop
from dlrun.follow.words import describe
from dlrun.records import Remedy, Verdict

Launch = Callable[[list[list[str]]], list[Run]]


@dataclass(frozen=True)
class Settings:
    width: int = 3
    rounds: int = 4
    budget: float | None = None  # wall seconds; None: no limit


def next_batch(base: Run, seen: dict[tuple, int | None], width: int
               ) -> tuple[list[tuple[Remedy, list[str]]], list[Skipped]]:
    """The first `width` remedies of `base`'s diagnosis the walk may follow, with their
    overrides; and the remedies it passed over, with the reason."""
    batch, skipped = [], []
    for remedy in base.outcome.remedies:
        if len(batch) == width:
            break
        overrides = remedy_overrides(remedy.command)
        measured = measured_keys(changes(overrides, base.overrides))
        if measured:
            skipped.append(Skipped(remedy, "changes what is measured, not the model: "
                                   + ", ".join(measured)))
        elif canonical(overrides) in seen:
            job = seen[canonical(overrides)]
            skipped.append(Skipped(remedy, "already in this round" if job is None
                                   else f"already run as #{job}"))
        else:
            batch.append((remedy, overrides))
            seen[canonical(overrides)] = None
    return batch, skipped


# the map's training side: a run placed there has a training loss that is large
TRAINING_SIDE = (Verdict.MODEL_BIAS, Verdict.OPTIMIZATION)


def _went_back(run: Run, base: Run) -> bool:
    """A remedy of a held-out problem whose run lost the training fit (e.g. a constant
    predictor's test loss can beat an overfit model's): it went back up the map."""
    return base.outcome.verdict not in TRAINING_SIDE and run.outcome.verdict in TRAINING_SIDE


def _rank(run: Run, quantity: str, base: Run | None = None) -> tuple[bool, float, float]:
    objective = run.outcome.objective
    back = base is not None and _went_back(run, base)
    return (back, run.value(quantity),
            objective if objective is not None and math.isfinite(objective) else math.inf)


def choose(round_: Round) -> Run | None:
    """The next base: the best good run of the batch, else the best run that lowered the
    branch's quantity below its base's (one that kept the training fit first), else None."""
    quantity = round_.quantity
    ranked = [r for r in round_.tried if r.outcome.ok and r.value(quantity) is not None]
    good = [r for r in ranked if r.outcome.good]
    before = round_.base.value(quantity)
    better = good or [r for r in ranked if before is None or r.value(quantity) < before]
    return min(better, key=lambda r: _rank(r, quantity, round_.base), default=None)


def _stuck(round_: Round) -> str:
    quantity = round_.quantity
    tried = "; ".join(f"{r.action} ({describe(r, quantity)})" for r in round_.tried)
    ranked = [r for r in round_.tried if r.outcome.ok and r.value(quantity) is not None]
    best = min(ranked, key=lambda r: _rank(r, quantity), default=None)
    reached = (f"the best reached {quantity} loss {best.value(quantity):.4g}" if best
               else "none of them finished")
    before = round_.base.value(quantity)
    return (f"stuck at {round_.branch}: the remedies tried were {tried}; {reached}, against "
            f"{before:.4g} for #{round_.base.job} they started from")


def walk(start: list[str], launch: Launch, settings: Settings,
         clock: Callable[[], float] = time.monotonic) -> FollowPath:
    """Walk the map from `start`; the returned path says where it ended and why."""
    began = clock()
    [first] = launch([list(start)])
    path = FollowPath(first, settings={"width": settings.width, "rounds": settings.rounds,
                                       "budget": settings.budget})
    seen: dict[tuple, int | None] = {canonical(first.overrides): first.job}
    base = first

    def end(stop: Stop, reason: str) -> FollowPath:
        path.stop, path.reason, path.wall_time_s = stop, reason, clock() - began
        return path

    if not first.outcome.ok:
        return end(Stop.FAILED, f"your run failed, so there is nothing to follow: "
                                f"{first.outcome.error}")
    if first.outcome.good:
        return end(Stop.GOOD, f"#{first.job} is good already: nothing to follow")
    if first.outcome.verdict not in QUANTITY:
        return end(Stop.UNPLACED, f"#{first.job} is {first.outcome.verdict or 'not diagnosed'}: "
                                  "the map names no branch to follow")
    for number in range(1, settings.rounds + 1):
        spent = clock() - began
        if settings.budget is not None and spent >= settings.budget:
            return end(Stop.BUDGET, f"follow.budget={settings.budget:g} s spent ({spent:.0f} s) "
                                    f"after {number - 1} round(s): the walk ends at "
                                    f"{describe(base, QUANTITY[base.outcome.verdict])}")
        batch, skipped = next_batch(base, seen, settings.width)
        round_ = Round(number, base, skipped=skipped)
        path.rounds.append(round_)
        if not batch:
            passed = "; ".join(f"{s.remedy.action} ({s.reason})" for s in skipped) or "none offered"
            return end(Stop.NO_REMEDY, f"no remedy of #{base.job}'s diagnosis "
                                       f"({base.outcome.verdict}) is left to follow: {passed}")
        round_.tried = launch([overrides for _, overrides in batch])
        for run, (remedy, overrides) in zip(round_.tried, batch):
            run.action, run.changes = remedy.action, changes(overrides, base.overrides)
            seen[canonical(overrides)] = run.job
        round_.chosen = choose(round_)
        if round_.chosen is None:
            return end(Stop.STUCK, _stuck(round_))
        base = round_.chosen
        if base.outcome.good:
            return end(Stop.GOOD, f"good after {number} round(s): #{base.job} ({base.action})")
        if base.outcome.verdict not in QUANTITY:
            return end(Stop.UNPLACED, f"{describe(base)}: the map names no branch to follow")
    return end(Stop.ROUNDS, f"not good after {settings.rounds} round(s): the walk ends at "
                            f"{describe(base, QUANTITY[base.outcome.verdict])}")
