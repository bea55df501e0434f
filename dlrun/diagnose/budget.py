"""The probes' time budget: diagnose.probe_budget x the run's own time, shared out as the
probes run, and checked before every step a probe takes.

A `Deadline` is predictive: a probe asks `allows()` before each unit of work (an L-BFGS
iteration, a Hessian-vector product, an Adam step, a gradient chunk) and it answers no
when the unit, timed like the last one, would end past the deadline. So a probe stops
before it overruns, not after.
"""

from __future__ import annotations

import time


class Deadline:
    def __init__(self, at: float | None):
        self.at = at
        self.last = 0.0  # seconds the previous unit took
        self._started: float | None = None
        self.refused = False  # some unit was not run: the probe was cut short

    def tick(self) -> float:
        """A unit starts now: time the one before it. Returns now."""
        now = time.perf_counter()
        if self._started is not None:
            self.last = now - self._started
        self._started = now
        return now

    def allows(self) -> bool:
        """May the next unit run? (It starts now if so.)"""
        now = self.tick()
        if self.at is not None and now + self.last > self.at:
            self.refused = True
            return False
        return True

    @property
    def passed(self) -> bool:
        return self.at is not None and time.perf_counter() >= self.at


NO_DEADLINE = Deadline(None)


class Budget:
    """The probes' share of the run's time; each iterative probe may use its share of what
    is left when it starts (the map asks for probes in the order it needs them)."""

    SHARES = {"references": 0.4, "own_optimum": 0.6, "tiny": 0.5, "critical_point": 0.8,
              "initial_curvature": 0.8, "escape": 1.0}

    # the probes aim at 90% of the budget: a unit that runs longer than the one before it
    # (a busy machine) overshoots its deadline by at most that unit
    AIM = 0.9

    def __init__(self, seconds: float | None):
        self.end = time.perf_counter() + self.AIM * seconds if seconds else None

    def deadline(self, probe: str) -> Deadline:
        if self.end is None or probe not in self.SHARES:
            return Deadline(None)
        now = time.perf_counter()
        return Deadline(now + self.SHARES[probe] * max(0.0, self.end - now))
