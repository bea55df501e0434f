"""The optimization map of the lecture notes, as data (DESIGN.md section 1):

    Is the training loss large?
    ├─ yes: model bias, or an optimization issue?
    │   ├─ model bias
    │   └─ optimization issue: where is it stuck?
    └─ no: is the held-out loss large?
        ├─ yes: overfitting, or mismatch?
        └─ no: good

Each question is one object (here and in `bias`, `stuck` and `heldout`: `judge` from
numbers, `explain` in words, `needs`: the probes that could change its answer); `MAP` wires them, `SIDE` lists the findings
that can accompany any branch, and `diagnose_evidence` walks them. "Large" is relative:
to the trivial predictor (mean / class prior), to reference models fit to the same
training data, and to `target_train_loss` when the user sets one. No torch here.
"""

from __future__ import annotations

from dlrun.diagnose import heldout, symptoms
from dlrun.diagnose.bias import BiasOrOptimization, fitted, noise, train_bar
from dlrun.diagnose.questions import (
    Judgement,
    Measure,
    Outcome,
    Question,
    exact_text,
    fmt,
    walk,
    wrong_often,
)
from dlrun.records import Code, Finding, Verdict
from dlrun.records.evidence import Evidence


class TrainLarge(Question):
    id = "train_large"
    label = "Is the TRAINING loss large?"
    answers = {"yes": BiasOrOptimization(), "no": heldout.HeldoutLarge()}
    needs = ("trivial", "references")

    def wants(self, ev, th, judgement):
        return () if ev.history.nonfinite_epoch is not None else self.needs

    def judge(self, ev: Evidence, th) -> Judgement:
        if ev.history.nonfinite_epoch is not None:
            return Judgement("yes", {"nonfinite_epoch": ev.history.nonfinite_epoch})
        if ev.trivial is None:
            return Judgement("yes", {"train_loss": ev.loss.train})  # nothing measured yet
        train, trivial, target = ev.loss.train, ev.trivial.train, th.target_train_loss
        bar = train_bar(ev, th)
        # below the bar, the loss is still large when a reference this architecture can
        # express (not one of fewer parameters) fits clearly better and also validates better,
        # beyond the noise of the val loss: the run left something it could reach, where it
        # matters (a val loss equal within noise is a coin flip, not evidence)
        better = [r for r in fitted(ev.references) if r.expressible and r.val_loss is not None
                  and r.val_loss < ev.loss.val - noise(ev, "val")]
        best = min(better, key=lambda r: r.train_loss, default=None)
        beaten = best is not None and train > best.train_loss + th.reference_margin * trivial
        large = train > bar or beaten or wrong_often(ev.exact, "train", th)
        j = Judgement("yes" if large else "no", {
            "train_loss": train, "trivial_loss": trivial, "large_above": bar,
            "references": ev.references or [], "exact": ev.exact})
        j.context = {"target": target, "fraction": th.large_loss_fraction}
        if large:
            j.find(Code.TRAIN_LOSS_LARGE, self.explain(j), train_loss=train,
                   trivial_loss=trivial, large_above=bar)
        return j

    def explain(self, j: Judgement) -> str:
        n = j.numbers
        if "nonfinite_epoch" in n:
            return f"the loss became non-finite (NaN/inf) in epoch {n['nonfinite_epoch']}"
        if "trivial_loss" not in n:
            return f"train {fmt(n['train_loss'])}; nothing to compare it with yet"
        target, fraction = j.context["target"], j.context["fraction"]
        bar_text = (f"your target {fmt(target)}" if target is not None else
                    f"{fraction:g} x trivial {fmt(n['trivial_loss'])} = {fmt(n['large_above'])}")
        refs = ", ".join(f"{r.name} reference {fmt(r.train_loss)}" for r in n["references"])
        return (f"train {fmt(n['train_loss'])} vs {bar_text}" + (f"; {refs}" if refs else "")
                + exact_text(n["exact"], "train", fraction))


MAP = TrainLarge()
# findings that only restate a decision on the path (the terminal tree shows them as such)
RESTATED = (Code.TRAIN_LOSS_LARGE, Code.SIMPLER_MODEL_BETTER, Code.TINY_SUBSET_NOT_FIT)
SIDE = [symptoms.SaddleEscape(), heldout.Overtraining(), *symptoms.SYMPTOMS, *symptoms.CLOSING]


def diagnose_evidence(ev: Evidence, th, measure: Measure | None = None) -> Outcome:
    """Walk the map over `ev` with thresholds `th` (cfg.diagnose), running the probes the
    questions want through `measure`; a run without a finished epoch is inconclusive."""
    if not ev.history.epochs:
        return Outcome(Verdict.INCONCLUSIVE, None, [], [Finding(
            Code.NO_HISTORY, "the run has no finished epoch to judge; train for at least one epoch")])
    return walk(MAP, SIDE, ev, th, measure)
