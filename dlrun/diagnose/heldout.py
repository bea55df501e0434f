"""The map's held-out side: is the validation / test loss large, and if so, overfitting or
a train/test mismatch? Plus the overtraining finding (validation lowest at an earlier
epoch) that accompanies this side. No torch here.
"""

from __future__ import annotations

import math

from dlrun.diagnose.questions import (
    Judgement,
    Leaf,
    Question,
    SideFinding,
    exact_text,
    fmt,
    wrong_often,
)
from dlrun.records import Code, Finding, Verdict
from dlrun.records.evidence import Evidence, SplitLosses


def _best_reference_val(ev: Evidence, floor_within: float | None = None):
    """The reference with the lowest validation loss. With `floor_within`, only a reference
    that shows the floor the data allows: it fits the training data about as well as the
    run (within that much) and does as well on validation (no gap beyond that much). One
    that fits worse, or overfits itself, says nothing about the floor."""
    refs = [r for r in ev.references or [] if r.val_loss is not None and r.train_loss is not None]
    if floor_within is not None:
        refs = [r for r in refs if r.train_loss <= ev.loss.train + floor_within
                and r.val_loss <= r.train_loss + floor_within]
    return min(refs, key=lambda r: r.val_loss, default=None)


class OverfitOrMismatch(Question):
    id = "overfit_or_mismatch"
    label = "Overfitting, or mismatch? (is validation large too?)"
    answers = {
        "overfitting": Leaf("overfitting", "overfitting -> more data, regularization, early stopping",
                            Verdict.OVERFITTING),
        "mismatch": Leaf("mismatch", "mismatch -> train and test distributions differ",
                         Verdict.MISMATCH),
        "neither": Leaf("test_large_in_distribution",
                        "neither: only an unshifted test split is large (chance?)",
                        Verdict.INCONCLUSIVE),
    }

    def judge(self, ev: Evidence, th) -> Judgement:
        large = HeldoutLarge.sizes(ev, th)
        loss, h = ev.loss, ev.history
        if large["val_large"]:
            j = Judgement("overfitting", {**large, "gap": loss.val - loss.train,
                                          "min_val_epoch": h.min_val_epoch,
                                          "min_val_loss": h.min_val_loss})
            j.find(Code.OVERFITTING, self.explain(j), gap=loss.val - loss.train,
                   train_loss=loss.train, val_loss=loss.val, min_val_epoch=h.min_val_epoch,
                   min_val_loss=h.min_val_loss, reference=large["reference"])
        elif ev.test_shift:
            j = Judgement("mismatch", {**large, "test_shift": ev.test_shift})
            j.find(Code.MISMATCH, self.explain(j) + ": train and test come from different "
                   "distributions; more data of the training kind cannot fix it",
                   test_shift=ev.test_shift, train=loss.train, val=loss.val, test=loss.test)
        else:
            j = Judgement("neither", large)
            j.find(Code.TEST_LARGE_IN_DISTRIBUTION, self.explain(j), train=loss.train,
                   val=loss.val, test=loss.test)
        return j

    def explain(self, j: Judgement) -> str:
        n = j.numbers
        if j.answer == "overfitting":
            return (f"{HeldoutLarge.val_text(n)}; gap val - train = {fmt(n['gap'])}; "
                    f"validation lowest at epoch {n['min_val_epoch']} "
                    f"({fmt(n['min_val_loss'])})")
        if j.answer == "mismatch":
            return (f"val {fmt(n['val_loss'])} is small but the shifted ({n['test_shift']}) test "
                    f"{fmt(n['test_loss'])} is large: {n['test_loss'] / max(n['val_loss'], 1e-12):.3g}x "
                    "what the model achieves on data from its own distribution")
        return (f"test {fmt(n['test_loss'])} is large but val "
                f"{fmt(n['val_loss'])} is small and both come from the training "
                "distribution: chance or a too-small test split, not a mismatch")


class HeldoutLarge(Question):
    id = "heldout_large"
    label = "Is the held-out (validation / test) loss large?"
    answers = {"yes": OverfitOrMismatch(), "no": Leaf("good", "good", Verdict.GOOD)}
    needs = ("trivial", "references", "spread")

    @staticmethod
    def sizes(ev: Evidence, th) -> dict:
        """Validation and test losses against what the model achieves in distribution.

        A gap between two splits counts only when it is larger than its sampling noise
        (`gap_standard_errors` standard errors of the difference, from the per-example
        losses). Validation is large when it is also above the bar — the trivial fraction,
        raised to the floor the data allows (a reference that fits the training data as well
        as the run and validates as well as it fits, plus the margin) — or clearly above a
        reference's. The test split is large
        when it is above its trivial bar, or `mismatch_ratio` times the validation loss and
        more than the margin above it.
        """
        loss, trivial, exact, z = ev.loss, ev.trivial, ev.exact, th.gap_standard_errors
        margin = th.reference_margin * trivial.val
        ref = _best_reference_val(ev)
        floor = _best_reference_val(ev, floor_within=margin)
        val_bar = max(th.large_loss_fraction * trivial.val,
                      floor.val_loss + margin if floor is not None else 0.0)
        test_bar = th.large_loss_fraction * trivial.test
        se = ev.loss_se or SplitLosses()
        val_gap, test_gap = loss.val - loss.train, loss.test - loss.val
        val_noise = z * math.hypot(se.val or 0.0, se.train or 0.0)
        test_noise = z * math.hypot(se.test or 0.0, se.val or 0.0)
        better_ref = ref is not None and loss.val > ref.val_loss + margin
        val_large = val_gap > val_noise and (loss.val > val_bar or better_ref)
        test_large = test_gap > test_noise and (
            loss.test > test_bar
            or (loss.test > th.mismatch_ratio * loss.val and test_gap > margin))
        return {
            "val_loss": loss.val, "test_loss": loss.test,
            "val_large_above": val_bar, "test_large_above": test_bar,
            "val_gap": val_gap, "val_gap_noise": val_noise,
            "test_gap": test_gap, "test_gap_noise": test_noise, "margin": margin,
            "test_shift": ev.test_shift, "exact": exact, "reference": ref, "floor": floor,
            "trivial_val": trivial.val, "fraction": th.large_loss_fraction,
            "val_large": bool(val_large or wrong_often(exact, "val", th)),
            "test_large": bool(test_large or wrong_often(exact, "test", th)),
        }

    @staticmethod
    def val_text(n: dict) -> str:
        ref = n["reference"]
        return (f"val {fmt(n['val_loss'])} vs bar {fmt(n['val_large_above'])} ({n['fraction']:g} x "
                f"trivial {fmt(n['trivial_val'])}"
                + (f"; {ref.name} reference val {fmt(ref.val_loss)}" if ref else "")
                + f"), gap to train {fmt(n['val_gap'])} (noise {fmt(n['val_gap_noise'])})"
                + exact_text(n["exact"], "val", n["fraction"]))

    def judge(self, ev: Evidence, th) -> Judgement:
        n = self.sizes(ev, th)
        j = Judgement("yes" if n["val_large"] or n["test_large"] else "no", n)
        if j.answer == "no":
            loss = ev.loss
            j.find(Code.GOOD, f"train {fmt(loss.train)}, val {fmt(loss.val)}, "
                   f"test {fmt(loss.test)}: small against the trivial predictor and the "
                   "references" + ("" if ev.exact is None else ", and whole targets are right "
                                   f"at least {1 - th.large_loss_fraction:g} of the time"),
                   train=loss.train, val=loss.val, test=loss.test)
        return j

    def explain(self, j: Judgement) -> str:
        n = j.numbers
        test = (f"test {fmt(n['test_loss'])} vs {fmt(n['test_large_above'])}, "
                f"{fmt(n['test_gap'])} above val (noise {fmt(n['test_gap_noise'])})"
                f"{exact_text(n['exact'], 'test', n['fraction'])}; ")
        test += (f"test split shifted ({n['test_shift']})" if n["test_shift"] else
                 "test comes from the training distribution (data.test_shift=null): a mismatch "
                 "cannot be detected")
        return f"{self.val_text(n)}; {test}"


class Overtraining(SideFinding):
    """Validation loss was lowest at an earlier epoch: how much early stopping would save."""

    code = Code.OVERTRAINING
    after = HeldoutLarge.id

    def judge(self, ev: Evidence, th) -> list[Finding]:
        h = ev.history
        saves = h.early_stopping_saves
        if saves is None or saves <= th.overtraining_fraction * ev.trivial.val:
            return []
        return [Finding(self.code, f"validation loss was lowest at epoch {h.min_val_epoch} "
                        f"({fmt(h.min_val_loss)}) and ended at {fmt(h.final_val_loss)}: stopping "
                        f"there would have saved {fmt(saves)} and {h.epochs_after_min_val} epochs",
                        {"min_val_epoch": h.min_val_epoch, "min_val_loss": h.min_val_loss,
                         "final_val_loss": h.final_val_loss, "saves": saves,
                         "epochs_saved": h.epochs_after_min_val})]
