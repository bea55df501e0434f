"""Findings that can accompany any verdict: gradients by depth, dead ReLU units, badly
scaled inputs (the cheap signals), and the result of the saddle escape test. No torch.
"""

from __future__ import annotations

from dlrun.diagnose.history import MIN_EPOCHS
from dlrun.diagnose.questions import SideFinding, fmt
from dlrun.records import Code, Finding
from dlrun.records.evidence import Evidence


class GradientsByDepth(SideFinding):
    """First- vs last-layer gradient per weight: vanishing (or growing) with depth."""

    code = Code.VANISHING_GRADIENTS
    needs = ("signals",)

    def judge(self, ev: Evidence, th) -> list[Finding]:
        g = ev.gradients
        if g is None or g.ratio is None:
            return []
        if g.ratio < th.vanishing_ratio:
            return [Finding(Code.VANISHING_GRADIENTS, f"the first layer's gradient "
                            f"({fmt(g.first)} per weight) is {g.ratio:.1e} of the last layer's "
                            f"({fmt(g.last)}): it barely learns", dict(vars(g)))]
        if g.ratio > 1 / th.vanishing_ratio:
            return [Finding(Code.EXPLODING_GRADIENTS, f"the first layer's gradient is "
                            f"{g.ratio:.1e}x the last layer's: gradients grow with depth", dict(vars(g)))]
        return []


class GradientsThroughTime(SideFinding):
    """Recurrent models: the gradient reaching the first steps of a sequence against the
    last ones. Backpropagation through time multiplies by the recurrent Jacobian once per
    step, so it vanishes (or explodes) over long sequences."""

    code = Code.VANISHING_THROUGH_TIME
    needs = ("signals",)

    def judge(self, ev: Evidence, th) -> list[Finding]:
        t = ev.time_gradients
        if t is None or t.ratio is None:
            return []
        if t.ratio < th.vanishing_ratio:
            return [Finding(Code.VANISHING_THROUGH_TIME, f"the gradient reaching the first "
                            f"quarter of the {t.steps} steps is {t.ratio:.1e} of what reaches the "
                            "last quarter: the model cannot learn from early inputs", dict(vars(t)))]
        if t.ratio > 1 / th.vanishing_ratio:
            return [Finding(Code.EXPLODING_THROUGH_TIME, f"the gradient reaching the first steps "
                            f"is {t.ratio:.1e}x what reaches the last: it grows through time",
                            dict(vars(t)))]
        return []


class DeadRelus(SideFinding):
    code = Code.DEAD_RELUS
    needs = ("signals",)

    def judge(self, ev: Evidence, th) -> list[Finding]:
        d = ev.dead_relu
        if d is None or not d.units or d.fraction <= th.dead_relu_fraction:
            return []
        return [Finding(self.code, f"{d.fraction:.0%} of {d.units} ReLU units never fire on the "
                        "training data: they get no gradient", dict(vars(d)))]


class BadlyScaledInputs(SideFinding):
    code = Code.BADLY_SCALED_INPUTS
    needs = ("signals",)

    def judge(self, ev: Evidence, th) -> list[Finding]:
        x = ev.inputs
        if x is None or x.spread <= th.input_scale_ratio:
            return []
        return [Finding(self.code, f"input features differ in scale by {x.spread:.0f}x: an "
                        "elongated error surface", dict(vars(x)))]


class SaddleEscape(SideFinding):
    """The notes' escape from a saddle: a step along the negative-curvature eigenvector."""

    code = Code.SADDLE_ESCAPE
    needs = ("escape",)

    def wants(self, ev: Evidence, th) -> tuple[str, ...]:
        cp = ev.critical_point
        negative = cp is not None and cp.lambda_min < -th.negative_curvature * abs(cp.lambda_max)
        return self.needs if th.escape_saddle and negative else ()

    def judge(self, ev: Evidence, th) -> list[Finding]:
        e = ev.escape
        if e is None:
            return []
        result = " (escaped)" if e.loss_after < e.loss_before else " (no decrease)"
        return [Finding(self.code, f"a step of length {fmt(e.step)} along the negative-curvature "
                        f"eigenvector took the loss from {fmt(e.loss_before)} to "
                        f"{fmt(e.loss_after)}" + result, dict(vars(e)))]


class ShortHistory(SideFinding):
    """Statements about how the loss moves need a few epochs."""

    code = Code.SHORT_HISTORY

    def judge(self, ev: Evidence, th) -> list[Finding]:
        epochs = ev.history.finite_epochs
        if epochs is None or epochs >= MIN_EPOCHS:
            return []
        return [Finding(self.code, f"only {epochs} finished epoch(s): too few to say whether the "
                        f"loss is still falling or bouncing (that needs {MIN_EPOCHS})",
                        {"epochs": epochs, "needed": MIN_EPOCHS})]


class ProbeProblems(SideFinding):
    """What the diagnosis could not measure: probes that raised, probes the budget cut."""

    code = Code.PROBE_FAILED

    def judge(self, ev: Evidence, th) -> list[Finding]:
        found = [Finding(Code.PROBE_FAILED, f"the {f.probe} probe failed ({f.error}); the map "
                         "decided without it", {"probe": f.probe, "error": f.error})
                 for f in ev.failed or []]
        if ev.cut_short:
            found.append(Finding(Code.PROBES_CUT_SHORT, "diagnose.probe_budget stopped "
                                 f"{', '.join(ev.cut_short)} before they finished; raise it for "
                                 "firmer evidence", {"probes": list(ev.cut_short),
                                                     "probe_budget": th.probe_budget}))
        return found


SYMPTOMS = [GradientsByDepth(), GradientsThroughTime(), DeadRelus(), BadlyScaledInputs()]
CLOSING = [ShortHistory(), ProbeProblems()]
