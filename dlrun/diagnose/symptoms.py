"""Findings that can accompany any verdict: gradients by depth, dead ReLU units, badly
scaled inputs (the cheap signals), and the result of the saddle escape test. No torch.
"""

from __future__ import annotations

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


SYMPTOMS = [GradientsByDepth(), DeadRelus(), BadlyScaledInputs()]
