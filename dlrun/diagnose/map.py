"""The optimization map of the lecture notes, as data (DESIGN.md section 1):

    Is the training loss large?
    ├─ yes: model bias, or an optimization issue?
    │   ├─ model bias
    │   └─ optimization issue: where is it stuck?
    └─ no: is the held-out loss large?
        ├─ yes: overfitting, or mismatch?
        └─ no: good

Each question is one object below (`judge` from numbers, `explain` in words, `needs`:
the probes that could change its answer); `MAP` wires them, `SIDE` lists the findings
that can accompany any branch, and `diagnose_evidence` walks them. "Large" is relative:
to the trivial predictor (mean / class prior), to reference models fit to the same
training data, and to `target_train_loss` when the user sets one. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.diagnose import heldout, symptoms
from dlrun.diagnose.questions import (
    Judgement,
    Leaf,
    Measure,
    Outcome,
    Question,
    exact_text,
    fmt,
    walk,
    wrong_often,
)
from dlrun.records import Code, Finding, Verdict
from dlrun.records.evidence import Evidence, Reference, TinySubset


def fitted(refs: list[Reference] | None) -> list[Reference]:
    return [r for r in refs or [] if r.train_loss is not None]


# --- the training side ----------------------------------------------------------------


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


def judge_tiny(tiny: TinySubset | None, th) -> tuple[bool, bool]:
    """Does the tiny-subset probe count (enough parameters to memorize), and did it fit?"""
    if tiny is None:
        return False, False
    fit = tiny.loss is not None and tiny.loss < th.tiny_fit_fraction * tiny.trivial
    # a probe stopped by the time budget proves something only if it did fit
    counts = tiny.params >= th.memorize_ratio * tiny.targets and (fit or not tiny.cut_short)
    return counts, fit


@dataclass
class Reach:
    """The lowest training loss the run's own architecture is known to reach, and from what:
    its own optimum, or a reference it can express. Any of them proves the architecture can
    get that low; only its own optimum, fit to the end by gradients that flow, says it
    cannot get lower (a reference of another shape, a fit the budget cut short, one whose
    gradients vanish as the run's do, or a non-convex fit stuck where it started, is only
    an upper bound)."""

    loss: float
    source: str  # "own optimum" or "<name> reference"
    conclusive: bool


def hampered(ev: Evidence, th) -> bool:
    """The trained model's gradients vanish or explode (through depth or time): a fresh fit
    of the same architecture meets the same trouble, so it cannot show the family's limit."""
    ratios = [g.ratio for g in (ev.gradients, ev.time_gradients) if g is not None and g.ratio]
    return any(r < th.vanishing_ratio or r > 1 / th.vanishing_ratio for r in ratios)


def reach(ev: Evidence, th) -> Reach | None:
    known = []
    own = ev.own_optimum
    if own is not None and own.train_loss is not None:
        # a non-convex fit that never got below the constant predictor never left its start
        # (a plateau): that says nothing about where the architecture could get
        started = own.convex or own.train_loss < ev.trivial.train - noise(ev)
        known.append(Reach(own.train_loss, "own optimum",
                           not own.cut_short and not hampered(ev, th) and started))
    known += [Reach(r.train_loss, f"{r.name} reference", False)
              for r in fitted(ev.references) if r.expressible]
    best = min(known, key=lambda r: r.loss, default=None)
    if best is not None:  # every known fit stays above it; the own optimum says it is the floor
        best.conclusive = any(r.conclusive for r in known)
    return best


def train_bar(ev: Evidence, th) -> float:
    return (th.target_train_loss if th.target_train_loss is not None
            else th.large_loss_fraction * ev.trivial.train)


def noise(ev: Evidence, split: str = "train") -> float:
    """Twice the standard error of a split's mean loss: differences below it are noise."""
    se = ev.loss_se[split] if ev.loss_se is not None else None
    return 2 * se if se is not None else 0.0


class BiasOrOptimization(Question):
    """The notes: model bias when no function of the model's family makes the loss small;
    otherwise the optimization failed. What the family can reach is measured (its own
    optimum, references it can express); without that, weaker signs decide."""

    id = "bias_or_optimization"
    label = "Model bias, or an optimization issue?"
    answers = {
        "model bias": Leaf("model_bias", "model bias -> a more flexible model", Verdict.MODEL_BIAS),
        "optimization": WhereStuck(),
    }
    needs = ("own_optimum", "spread", "tiny", "critical_point")

    def wants(self, ev, th, judgement):
        basis = judgement.numbers.get("basis")
        if basis == "nonfinite":
            return ()
        wanted = ["spread"] + (["own_optimum"] if th.own_optimum_steps > 0 else [])
        if basis in ("falling", "default"):  # nothing measured decided it: the weaker signs
            wanted += ["tiny"] if th.tiny_subset_steps > 0 else []
            sgd = ev.optimizer is not None and ev.optimizer.sgd
            wanted += ["critical_point"] if sgd and th.hessian != "never" else []
        return tuple(wanted)

    def judge(self, ev: Evidence, th) -> Judgement:
        h = ev.history
        if h.nonfinite_epoch is not None:
            j = Judgement("optimization", {"basis": "nonfinite", "nonfinite_epoch": h.nonfinite_epoch})
            j.find(Code.NONFINITE_LOSS, f"the loss became non-finite (NaN/inf) in epoch "
                   f"{h.nonfinite_epoch}: the updates blew up", epoch=h.nonfinite_epoch)
            return j
        train, bar = ev.loss.train, train_bar(ev, th)
        best = reach(ev, th)
        n = {"train_loss": train, "large_above": bar, "params": ev.params}
        if best is not None and best.loss < bar and train > best.loss + noise(ev):
            j = Judgement("optimization", {**n, "basis": "reach", "reach": best.loss,
                                           "reach_source": best.source})
            code = Code.OWN_OPTIMUM_SMALL if best.source == "own optimum" else Code.SIMPLER_MODEL_BETTER
            j.find(code, self.explain(j), reach=best.loss, source=best.source, train_loss=train,
                   large_above=bar)
            return j
        if best is not None and best.loss >= bar and best.conclusive:
            return self._model_bias(ev, th, {**n, "basis": "reach", "reach": best.loss,
                                             "reach_source": best.source})
        trivial = ev.trivial.train
        if ev.can_output_constant and train > trivial + noise(ev):
            j = Judgement("optimization", {**n, "basis": "constant", "trivial_loss": trivial})
            j.find(Code.WORSE_THAN_CONSTANT, self.explain(j), train_loss=train,
                   trivial_loss=trivial)
            return j
        if hampered(ev, th):
            return Judgement("optimization", {**n, "basis": "gradients"})
        counts, fit = judge_tiny(ev.tiny, th)
        if counts and not fit:
            j = Judgement("optimization", {**n, "basis": "tiny", "tiny": ev.tiny})
            j.find(Code.TINY_SUBSET_NOT_FIT, self.explain(j) + ": an optimization problem (or a bug)",
                   **vars(ev.tiny))
            return j
        ratio = step_ratio(ev)
        if ratio is not None and ratio < th.small_step_ratio:
            return Judgement("optimization", {**n, "basis": "step_size", "step_ratio": ratio,
                                              "lr": ev.optimizer.lr})
        if h.still_falling:
            return Judgement("optimization", {**n, "basis": "falling", "fall_rate": h.fall_rate})
        return self._model_bias(ev, th, {**n, "basis": "default"})

    def _model_bias(self, ev: Evidence, th, numbers: dict) -> Judgement:
        train, tiny = ev.loss.train, ev.tiny
        counts, _ = judge_tiny(tiny, th)
        others = [r for r in fitted(ev.references) if not r.expressible]
        best = min(others, key=lambda r: r.train_loss, default=None)
        helps = best is not None and best.train_loss < train - th.reference_margin * ev.trivial.train
        j = Judgement("model bias", {**numbers, "tiny": tiny, "tiny_counts": counts,
                                     "flexible": best if helps else None})
        if numbers.get("reach") is not None:
            code = (Code.OWN_OPTIMUM_LARGE if numbers["reach_source"] == "own optimum"
                    else Code.MODEL_BIAS)
            if code is Code.OWN_OPTIMUM_LARGE:
                j.find(code, _reach_reason(numbers), reach=numbers["reach"],
                       large_above=numbers["large_above"])
            if train > numbers["reach"] + noise(ev) + th.reference_margin * ev.trivial.train:
                # the run is also far from what its model can do: a second, smaller problem
                j.find(Code.NOT_CONVERGED, f"the run's training loss {fmt(train)} is above what "
                       f"its architecture reaches ({fmt(numbers['reach'])}, {numbers['reach_source']}"
                       f"): training longer gets at best there, still above the bar "
                       f"{fmt(numbers['large_above'])}", at_best=numbers["reach"],
                       train_loss=train)
        elif tiny is not None:
            code = Code.TINY_SUBSET_FIT if counts else Code.TINY_SUBSET_UNINFORMATIVE
            j.find(code, _tiny_reason(tiny, counts, ev.params), **vars(tiny))
        if helps:
            j.find(Code.FLEXIBLE_MODEL_BETTER, f"{_flexible_reason(best)} < {fmt(train)}: more "
                   "capacity helps", reference=best, train_loss=train)
        j.find(Code.MODEL_BIAS, "the model family cannot represent the data well: "
               + self.explain(j), train_loss=train)
        return j

    def explain(self, j: Judgement) -> str:
        n = j.numbers
        basis = n["basis"]
        if basis == "nonfinite":
            return "a non-finite loss is an optimization failure"
        if basis == "reach" and j.answer == "optimization":
            return (f"the {n['reach_source']} of this architecture reaches train loss "
                    f"{fmt(n['reach'])}, below the bar {fmt(n['large_above'])}; this run is at "
                    f"{fmt(n['train_loss'])}: the model can fit the data, the run did not")
        if basis == "constant":
            return (f"the training loss {fmt(n['train_loss'])} is above the constant predictor's "
                    f"{fmt(n['trivial_loss'])}, which the model can output: it has not even "
                    "learned the average")
        if basis == "gradients":
            return ("its gradients vanish or explode on the way back (see the findings): "
                    "training cannot reach what the model could represent")
        if basis == "tiny":
            t = n["tiny"]
            return (f"it cannot fit {t.n} training examples (loss {fmt(t.loss)}, trivial "
                    f"{fmt(t.trivial)}) although its {n['params']:,} parameters could memorize "
                    f"their {t.targets} targets")
        if basis == "step_size":
            return (f"each step (lr {n['lr']:.3g}) is {n['step_ratio']:.1e} of what the curvature "
                    "along the gradient allows: the learning rate is too small to show what the "
                    "model can fit")
        if basis == "falling":
            return (f"the training loss still fell {n['fall_rate']:.1%} per epoch at the end: "
                    "the run has not shown what the model can fit")
        reasons = ([_reach_reason(n)] if basis == "reach" else
                   ["nothing measured shows the architecture reaching a smaller loss"])
        if basis != "reach" and n["tiny"] is not None:
            reasons.append(_tiny_reason(n["tiny"], n["tiny_counts"], n["params"]))
        if n["flexible"] is not None:
            reasons.append(_flexible_reason(n["flexible"]))
        return "; ".join(reasons)


def step_ratio(ev: Evidence) -> float | None:
    """SGD's step along the gradient against the curvature there: lr / (1 - momentum) x the
    curvature along the gradient (~1 reaches the valley floor; << 1 crawls). The learning
    rate is the one the last epoch used. None for adaptive optimizers, which scale each step
    by their own statistics, or without a critical-point analysis."""
    opt, cp = ev.optimizer, ev.critical_point
    if opt is None or not opt.sgd or cp is None or not cp.curvature_along_gradient:
        return None
    return opt.lr / (1 - (opt.momentum or 0.0)) * cp.curvature_along_gradient


def _reach_reason(n: dict) -> str:
    return (f"fit hard, this architecture reaches at best {fmt(n['reach'])} "
            f"({n['reach_source']}), above the bar {fmt(n['large_above'])}: no setting of its "
            "weights makes the training loss small")


def _tiny_reason(tiny: TinySubset, counts: bool, params: int) -> str:
    if counts:
        return f"it memorizes {tiny.n} examples (loss {fmt(tiny.loss)}), so it does optimize"
    if tiny.cut_short:
        return (f"the tiny-subset probe ran out of time after {tiny.steps} steps without "
                "fitting: it says nothing")
    return (f"too few parameters ({params:,}) to memorize {tiny.targets} targets: the "
            "tiny-subset probe says nothing")


def _flexible_reason(ref: Reference) -> str:
    return f"a more flexible {ref.name} reference reaches {fmt(ref.train_loss)}"


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
        # express (not one of fewer parameters) fits clearly better and validates as well:
        # the run left something it could reach, where it matters
        better = [r for r in fitted(ev.references) if r.expressible and r.val_loss is not None
                  and r.val_loss <= ev.loss.val]
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
