"""What one run of the walk ended with, read through the typed records.

An `Outcome` holds the verdict, the remedies and checks of the diagnosis, the losses of the
weights the run kept (the restored epoch under early stopping) and what the job returned
to the sweeper. A cross-validation (`cv.folds=N`) is judged on its folds: the losses are
the means over the folds, the verdict the one most folds got, and its remedies those of
the first fold that got it (every fold's commands start from the same overrides).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dlrun.records import SPLITS, Diagnosis, Remedy, Summary, Verdict, read_diagnosis, read_summary

# the quantity each branch of the map names: what its remedies must lower
QUANTITY: dict[Verdict, str] = {
    Verdict.MODEL_BIAS: "train",
    Verdict.OPTIMIZATION: "train",
    Verdict.OVERFITTING: "val",
    Verdict.MISMATCH: "test",
}


@dataclass
class Outcome:
    status: str  # ok | failed
    verdict: Verdict | None = None  # None: no diagnosis (diagnose=off, a failed run)
    stuck: str | None = None
    losses: dict[str, float] = field(default_factory=dict)  # split -> loss of the kept weights
    objective: float | None = None  # what the job returned (val loss; the CV mean)
    remedies: list[Remedy] = field(default_factory=list)
    checks: list[Remedy] = field(default_factory=list)
    because: list[str] = field(default_factory=list)  # the map's answers, in words and numbers
    error: str | None = None
    wall_time_s: float | None = None
    folds: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def good(self) -> bool:
        return self.ok and self.verdict == Verdict.GOOD

    def loss(self, split: str) -> float | None:
        value = self.losses.get(split)
        return value if value is not None and math.isfinite(value) else None

    def to_json(self) -> dict:
        return {
            "status": self.status, "verdict": None if self.verdict is None else str(self.verdict),
            "stuck": self.stuck, "losses": self.losses, "objective": self.objective,
            "because": self.because, "error": self.error, "wall_time_s": self.wall_time_s,
            "folds": self.folds,
            "remedies": [r.to_json() for r in self.remedies],
        }


def failed(error: str, wall_time_s: float | None = None) -> Outcome:
    return Outcome("failed", error=error, wall_time_s=wall_time_s)


def outcome_of(summary: Summary | None, diagnosis: Diagnosis | None,
               kept=None) -> Outcome:
    """The outcome of a finished run from its records; `kept` is the EpochRow of the weights
    it ended with (default: the summary's final epoch)."""
    if summary is None:
        return failed("no summary.json: the job ended before finishing (killed, out of memory)")
    if summary.status != "ok":
        return failed(summary.error or f"the run ended {summary.status}", summary.wall_time_s)
    row = kept or summary.final
    losses = {s: row.loss(s) for s in SPLITS if row is not None and row.loss(s) is not None}
    out = Outcome("ok", losses=losses, objective=summary.objective,
                  wall_time_s=summary.wall_time_s)
    if diagnosis is not None:
        out.verdict, out.stuck = diagnosis.verdict, diagnosis.stuck and str(diagnosis.stuck)
        out.remedies, out.checks = list(diagnosis.remedies), list(diagnosis.checks)
        out.because = [f"{d.node}: {d.answer} ({d.because})" for d in diagnosis.path]
    return out


def read_outcome(run_dir: Path) -> Outcome:
    """The outcome of the run in `run_dir` (a cross-validation judged on its folds)."""
    from dlrun.crossval import kept_row  # the weights a run ended with, as CV reads them

    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if summary is None or summary.status != "ok":
        return outcome_of(summary, None)
    if summary.mode != "cv":
        return outcome_of(summary, read_diagnosis(run_dir), kept_row(run_dir))
    folds = [run_dir / f"fold_{row['fold']}" for row in (summary.cv or {}).get("per_fold", [])]
    each = [outcome_of(read_summary(d), read_diagnosis(d), kept_row(d)) for d in folds]
    return _cv_mean(summary, each)


def _cv_mean(summary: Summary, folds: list[Outcome]) -> Outcome:
    judged = [f for f in folds if f.ok and f.verdict is not None]
    out = Outcome("ok", objective=summary.objective, wall_time_s=summary.wall_time_s,
                  folds=len(folds))
    for split in SPLITS:
        values = [f.loss(split) for f in folds]
        if values and all(v is not None for v in values):
            out.losses[split] = statistics.fmean(values)
    if judged:
        verdict = Counter(f.verdict for f in judged).most_common(1)[0][0]
        first = next(f for f in judged if f.verdict == verdict)
        out.verdict, out.stuck, out.remedies = verdict, first.stuck, first.remedies
        out.checks = first.checks
        out.because = [f"{sum(f.verdict == verdict for f in judged)} of {len(folds)} folds: "
                       f"{verdict}", *first.because]
    return out
