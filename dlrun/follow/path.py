"""The record of a walk: every run it made, each round's choice, and why it stopped.

One `FollowPath` is what the terminal tree, follow.json, follow.md and follow.png all show,
so the four never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dlrun.follow.outcome import QUANTITY, Outcome
from dlrun.records import Remedy, Verdict


class Stop(StrEnum):
    """Why the walk ended."""

    GOOD = "good"  # a run is good
    ROUNDS = "rounds"  # follow.rounds rounds done
    BUDGET = "budget"  # follow.budget seconds spent
    STUCK = "stuck"  # no remedy lowered the branch's quantity
    NO_REMEDY = "no_remedy"  # the diagnosis offered nothing the walk may follow
    FAILED = "failed"  # your own run failed
    UNPLACED = "unplaced"  # the diagnosis placed your run on no branch (inconclusive, off)


@dataclass
class Run:
    """One run of the walk: its job number and directory, what made it, how it ended."""

    job: int | None  # None: never launched (its overrides did not compose)
    overrides: list[str]
    outcome: Outcome
    dir: str = ""
    action: str | None = None  # the remedy it follows (None: your own command)
    changes: list[str] = field(default_factory=list)  # its overrides that its base lacks

    def value(self, quantity: str) -> float | None:
        return self.outcome.loss(quantity)

    def to_json(self) -> dict:
        return {"job": self.job, "dir": self.dir, "action": self.action, "changes": self.changes,
                "overrides": self.overrides, **self.outcome.to_json()}


@dataclass
class Skipped:
    remedy: Remedy
    reason: str

    def to_json(self) -> dict:
        return {"action": self.remedy.action, "command": self.remedy.command, "reason": self.reason}


@dataclass
class Round:
    """One batch of remedies of `base`'s diagnosis, judged by its branch's quantity."""

    number: int
    base: Run
    tried: list[Run] = field(default_factory=list)
    chosen: Run | None = None  # the next base (None: nothing beat `base`)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def branch(self) -> Verdict:
        return self.base.outcome.verdict

    @property
    def quantity(self) -> str:
        return QUANTITY[self.branch]

    def to_json(self) -> dict:
        return {
            "round": self.number, "base_job": self.base.job, "branch": str(self.branch),
            "quantity": f"{self.quantity}_loss", "base_value": self.base.value(self.quantity),
            "chosen_job": None if self.chosen is None else self.chosen.job,
            "tried": [r.to_json() for r in self.tried],
            "skipped": [s.to_json() for s in self.skipped],
        }


@dataclass
class FollowPath:
    start: Run
    rounds: list[Round] = field(default_factory=list)
    stop: Stop | None = None
    reason: str = ""  # the stop in one sentence
    wall_time_s: float = 0.0
    command: str = ""  # the complete command that reproduces the best run
    settings: dict = field(default_factory=dict)

    @property
    def best(self) -> Run:
        """The run the walk ends on: the last one chosen, else your own."""
        chosen = [r.chosen for r in self.rounds if r.chosen is not None]
        return chosen[-1] if chosen else self.start

    @property
    def runs(self) -> list[Run]:
        return [self.start, *(run for r in self.rounds for run in r.tried)]

    @property
    def reached_good(self) -> bool:
        return self.best.outcome.good

    def to_json(self) -> dict:
        best = self.best
        return {
            "settings": self.settings, "stop": str(self.stop), "reason": self.reason,
            "reached_good": self.reached_good,
            "rounds_run": sum(1 for r in self.rounds if r.tried),
            "runs": len(self.runs), "wall_time_s": self.wall_time_s,
            "best_job": best.job, "best_verdict": best.outcome.verdict and str(best.outcome.verdict),
            "command": self.command, "start": self.start.to_json(),
            "rounds": [r.to_json() for r in self.rounds],
        }
