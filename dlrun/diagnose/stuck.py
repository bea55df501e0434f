"""Where an optimization is stuck (the map's "optimization issue" branch): exploding
gradients, a learning rate that bounces across a valley or is too small for the curvature,
a loss still falling, a saddle point or a local minimum, in the order the evidence is most
specific. No torch here.
"""

from __future__ import annotations

from dlrun.diagnose.questions import Judgement, Leaf, Question, fmt
from dlrun.records import Code, Verdict
from dlrun.records.evidence import Evidence

STUCK_LABELS = {
    Code.EXPLODING_GRADIENTS: "exploding gradients / non-finite loss -> clip, lower LR",
    Code.LR_TOO_LARGE: "learning rate too large: bouncing across a valley -> lower LR, Adam, decay",
    Code.NOT_CONVERGED: "not converged: the loss is still falling -> train longer, larger LR",
    Code.SADDLE_POINT: "saddle point: small gradient, negative curvature -> momentum, small batches",
    Code.LOCAL_MINIMUM: "local minimum: small gradient, no negative curvature (rare in high dimensions)",
    Code.STALLED: "stalled, curvature not measured",
}


class WhereStuck(Question):
    """Which kind of optimization failure, in the order the evidence is most specific."""

    id = "where_stuck"
    label = "optimization issue -> where is it stuck?"
    answers = {str(code): Leaf(str(code), label, Verdict.OPTIMIZATION, code)
               for code, label in STUCK_LABELS.items()}
    needs = ("critical_point", "initial_curvature")

    def wants(self, ev, th, judgement):
        if ev.history.nonfinite_epoch is not None:  # how large a step the start allowed
            sgd = ev.optimizer is not None and ev.optimizer.sgd
            return ("initial_curvature",) if sgd and th.hessian != "never" else ()
        undecided = judgement.answer == Code.STALLED
        return ("critical_point",) if th.hessian == "auto" and undecided else ()

    def judge(self, ev: Evidence, th) -> Judgement:
        h, cp = ev.history, ev.critical_point
        if h.nonfinite_epoch is not None:
            numbers = {"nonfinite_epoch": h.nonfinite_epoch, "lr": ev.lr}
            if ev.initial_curvature:  # SGD is stable below 2 / lambda_max; 1 / lambda_max is safe
                momentum = ev.optimizer.momentum or 0.0
                numbers.update(lambda_max=ev.initial_curvature,
                               safe_lr=(1 - momentum) / ev.initial_curvature)
            j = Judgement(Code.EXPLODING_GRADIENTS, numbers)
            j.find(Code.EXPLODING_GRADIENTS, "the loss diverged: steps too large for the curvature"
                   + (f" (at the start, lambda_max {fmt(numbers['lambda_max'])}: SGD is stable "
                      f"below lr {fmt(2 * numbers['safe_lr'])})" if "safe_lr" in numbers else ""),
                   epoch=h.nonfinite_epoch, **numbers)
            return j
        if h.grad_spike:
            j = Judgement(Code.EXPLODING_GRADIENTS,
                          {"peak": h.grad_norm_peak, "median": h.grad_norm_median})
        elif h.oscillating:
            j = Judgement(Code.LR_TOO_LARGE, {"rise_fraction": h.rise_fraction})
        elif h.still_falling:
            j = Judgement(Code.NOT_CONVERGED, {"fall_rate": h.fall_rate, "window": h.window})
        elif cp is not None:
            j = self._at_critical_point(ev, th)
        else:
            j = Judgement(Code.STALLED, {"fall_rate": h.fall_rate, "epochs": h.finite_epochs})
        j.find(Code(j.answer), self.explain(j), **j.numbers)
        return j

    def _at_critical_point(self, ev: Evidence, th) -> Judgement:
        cp, bar = ev.critical_point, th.small_gradient_gain * ev.trivial.train
        numbers = {**vars(cp), "small_gain_below": bar, "fall_rate": ev.history.fall_rate}
        small = cp.descent_gain < bar
        negative = cp.lambda_min < -th.negative_curvature * abs(cp.lambda_max)
        if small:
            return Judgement(Code.SADDLE_POINT if negative else Code.LOCAL_MINIMUM, numbers)
        # a gradient that is not small, yet the loss does not fall: steps too large, or too
        # small? (`step_ratio`: SGD only; adaptive optimizers scale each step by their own
        # statistics, so for them a stalled loss counts as the notes' learning rate too large)
        ratio = step_ratio(ev)
        if ratio is not None:
            numbers.update(step_ratio=ratio, lr=ev.optimizer.lr)
            if ratio < th.small_step_ratio:
                return Judgement(Code.NOT_CONVERGED, numbers)
        elif not ev.history.stalled:
            return Judgement(Code.NOT_CONVERGED, numbers)
        return Judgement(Code.LR_TOO_LARGE, numbers)

    def explain(self, j: Judgement) -> str:
        n = j.numbers
        if "nonfinite_epoch" in n:
            return f"the loss became non-finite (NaN/inf) in epoch {n['nonfinite_epoch']}"
        if "peak" in n:
            return (f"an epoch's gradient norm reached {fmt(n['peak'])}, "
                    f"{n['peak'] / n['median']:.0f}x the median {fmt(n['median'])}")
        if "rise_fraction" in n and "lambda_max" not in n:
            return (f"the training loss rose in {n['rise_fraction']:.0%} of the epochs in the "
                    "second half: oscillating")
        if "window" in n:
            return (f"the training loss still fell {n['fall_rate']:.1%} per epoch over the last "
                    f"{n['window']} epochs")
        if "lambda_max" not in n:
            moved = (f"only {n['epochs']} epoch(s): too few to see how the loss moves"
                     if n["fall_rate"] is None else
                     f"the training loss changed {n['fall_rate']:.2%} per epoch at the end")
            return (f"{moved}; no critical-point analysis to tell a saddle from a valley "
                    "(diagnose.hessian=never, or the probe budget ran out)")
        small = n["descent_gain"] < n["small_gain_below"]
        grad = (f"gradient norm {fmt(n['grad_norm'])}: the best step along it gains "
                f"{fmt(n['descent_gain'])} ({'small' if small else 'not small'}, bar "
                f"{fmt(n['small_gain_below'])})")
        curvature = f"Hessian eigenvalues in [{fmt(n['lambda_min'])}, {fmt(n['lambda_max'])}]"
        fell = ("the history is too short to say how the loss moves" if n["fall_rate"] is None
                else f"the loss fell {n['fall_rate']:.2%} per epoch at the end")
        ratio = n.get("step_ratio")
        if j.answer == Code.SADDLE_POINT:
            return f"{grad}; {curvature}: clearly negative curvature"
        if j.answer == Code.LOCAL_MINIMUM:
            return f"{grad}; {curvature}: no clearly negative curvature"
        if j.answer == Code.NOT_CONVERGED and ratio is not None:
            return (f"{fell} while the {grad}; a step of lr {n['lr']:.3g} is {ratio:.1e} of the "
                    "step the curvature along the gradient allows: learning rate too small")
        if j.answer == Code.NOT_CONVERGED:
            return f"{fell} and the {grad}: not done yet"
        size = f"; the step is {ratio:.2g}x the curvature's limit" if ratio is not None else ""
        return f"{fell} while the {grad}{size}: bouncing across a valley"


def step_ratio(ev: Evidence) -> float | None:
    """SGD's step along the gradient against the curvature there: lr / (1 - momentum) x the
    curvature along the gradient (~1 reaches the valley floor; << 1 crawls). The learning
    rate is the one the last epoch used. None for adaptive optimizers, which scale each step
    by their own statistics, or without a critical-point analysis."""
    opt, cp = ev.optimizer, ev.critical_point
    if opt is None or not opt.sgd or cp is None or not cp.curvature_along_gradient:
        return None
    return opt.lr / (1 - (opt.momentum or 0.0)) * cp.curvature_along_gradient
