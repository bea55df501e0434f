"""The optimization map as a pure function: evidence in, verdict + path + findings out.

The map (DESIGN.md section 1, from the lecture notes):

    Is the training loss large?
    ├─ yes: model bias, or an optimization issue?
    │   ├─ model bias
    │   └─ optimization issue: where is it stuck?
    └─ no: is the held-out loss large?
        ├─ yes: overfitting, or mismatch?
        └─ no: good

`walk(evidence, th)` answers each question with numbers. "Large" is relative: to the
trivial predictor (mean / class prior), to simpler reference models fit to the same
training data, and to `target_train_loss` when the user sets one. No torch here, so
every branch is unit-tested on synthetic evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERDICTS = ("model_bias", "optimization", "overfitting", "mismatch", "good", "inconclusive")


@dataclass
class Node:
    """A question of the map (with answers leading to children) or a leaf (a verdict)."""

    id: str
    label: str
    children: dict[str, Node] = field(default_factory=dict)


STUCK = {
    "exploding_gradients": "exploding gradients / non-finite loss -> clip, lower LR",
    "lr_too_large": "learning rate too large: bouncing across a valley -> lower LR, Adam, decay",
    "not_converged": "not converged: the loss is still falling -> train longer, larger LR",
    "saddle_point": "saddle point: small gradient, negative curvature -> momentum, small batches",
    "local_minimum": "local minimum: small gradient, no negative curvature (rare in high dimensions)",
    "stalled": "stalled, curvature not measured",
}

MAP = Node(
    "train_large",
    "Is the TRAINING loss large?",
    {
        "yes": Node(
            "bias_or_optimization",
            "Model bias, or an optimization issue?",
            {
                "model bias": Node("model_bias", "model bias -> a more flexible model"),
                "optimization": Node(
                    "where_stuck",
                    "optimization issue -> where is it stuck?",
                    {code: Node(code, label) for code, label in STUCK.items()},
                ),
            },
        ),
        "no": Node(
            "heldout_large",
            "Is the held-out (validation / test) loss large?",
            {
                "yes": Node(
                    "overfit_or_mismatch",
                    "Overfitting, or mismatch? (is validation large too?)",
                    {
                        "overfitting": Node(
                            "overfitting",
                            "overfitting -> more data, regularization, early stopping",
                        ),
                        "mismatch": Node(
                            "mismatch", "mismatch -> train and test distributions differ"
                        ),
                    },
                ),
                "no": Node("good", "good"),
            },
        ),
    },
)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


class _Walk:
    """Collects the path (decisions with their reasons) and the findings of one diagnosis."""

    def __init__(self):
        self.path: list[dict] = []
        self.findings: list[dict] = []

    def decide(self, node: str, answer: str, because: str, **evidence) -> None:
        self.path.append({"node": node, "answer": answer, "because": because, "evidence": evidence})

    def find(self, code: str, message: str, **evidence) -> None:
        self.findings.append({"code": code, "message": message, "evidence": evidence})

    def result(self, verdict: str, stuck: str | None = None) -> dict:
        return {"verdict": verdict, "stuck": stuck, "path": self.path, "findings": self.findings}


def walk(ev: dict, th) -> dict:
    """Walk the map over the evidence `ev` (assembled by `dlrun.diagnose.run`) with thresholds `th`."""
    w = _Walk()
    result = _walk(w, ev, th)
    e = ev.get("escape")
    if e is not None:
        w.find(
            "saddle_escape",
            f"a step of length {_f(e['step'])} along the negative-curvature eigenvector took the "
            f"loss from {_f(e['loss_before'])} to {_f(e['loss_after'])}"
            + (" (escaped)" if e["loss_after"] < e["loss_before"] else " (no decrease)"),
            **e,
        )
    return result


def _walk(w: _Walk, ev: dict, th) -> dict:
    history = ev.get("history", {})
    if not history.get("epochs"):
        w.find("no_history", "the run has no finished epoch to judge; train for at least one epoch")
        return w.result("inconclusive")

    if history.get("nonfinite_epoch") is not None:
        epoch = history["nonfinite_epoch"]
        because = f"the loss became non-finite (NaN/inf) in epoch {epoch}"
        w.decide("train_large", "yes", because, nonfinite_epoch=epoch)
        w.decide(
            "bias_or_optimization", "optimization", "a non-finite loss is an optimization failure"
        )
        w.find("nonfinite_loss", because + ": the updates blew up", epoch=epoch)
        w.decide("where_stuck", "exploding_gradients", because)
        w.find(
            "exploding_gradients",
            "the loss diverged: steps too large for the curvature",
            epoch=epoch,
            lr=ev.get("lr"),
        )
        _symptoms(w, ev, th)
        return w.result("optimization", "exploding_gradients")

    loss, trivial = ev["loss"], ev["trivial"]
    refs = ev.get("references", [])
    simpler = [r for r in refs if r["params"] <= ev["params"] and r.get("train_loss") is not None]
    flexible = [r for r in refs if r["params"] > ev["params"] and r.get("train_loss") is not None]
    margin = th.reference_margin * trivial["train"]
    best_simpler = min(simpler, key=lambda r: r["train_loss"], default=None)
    simpler_better = (
        best_simpler is not None and loss["train"] > best_simpler["train_loss"] + margin
    )
    target = th.target_train_loss
    bar = target if target is not None else th.large_loss_fraction * trivial["train"]
    bar_text = (
        f"your target {_f(target)}"
        if target is not None
        else f"{th.large_loss_fraction:g} x trivial {_f(trivial['train'])} = {_f(bar)}"
    )
    exact = ev.get("exact")
    train_large = loss["train"] > bar or simpler_better or _wrong_often(exact, "train", th)
    ref_text = ", ".join(f"{r['name']} reference {_f(r['train_loss'])}" for r in refs)
    because = (f"train {_f(loss['train'])} vs {bar_text}" + (f"; {ref_text}" if ref_text else "")
               + _exact_text(exact, "train", th))
    w.decide(
        "train_large",
        "yes" if train_large else "no",
        because,
        train_loss=loss["train"],
        trivial_loss=trivial["train"],
        large_above=bar,
        references=refs,
        exact=exact,
    )

    if train_large:
        w.find(
            "train_loss_large",
            because,
            train_loss=loss["train"],
            trivial_loss=trivial["train"],
            large_above=bar,
        )
        return _bias_or_optimization(w, ev, th, best_simpler if simpler_better else None, flexible)
    return _heldout(w, ev, th, refs)


def judge_tiny(tiny: dict | None, th) -> dict | None:
    """Does the tiny-subset probe count (enough parameters to memorize), and did it fit?"""
    if tiny is None:
        return None
    fit = tiny["loss"] is not None and tiny["loss"] < th.tiny_fit_fraction * tiny["trivial"]
    # a probe stopped by the time budget proves something only if it did fit
    counts = tiny["params"] >= th.memorize_ratio * tiny["targets"] and (
        fit or not tiny.get("cut_short")
    )
    return {**tiny, "counts": counts, "fit": fit}


def _bias_or_optimization(
    w: _Walk, ev: dict, th, better: dict | None, flexible: list[dict]
) -> dict:
    train = ev["loss"]["train"]
    tiny = judge_tiny(ev.get("tiny"), th)
    if better is not None:
        same_size = better["params"] >= ev["params"]
        because = (
            f"the {'equally flexible' if same_size else 'simpler'} {better['name']} reference "
            f"({better['params']:,} parameters vs {ev['params']:,}) reaches train loss "
            f"{_f(better['train_loss'])} < {_f(train)}"
        )
        w.decide("bias_or_optimization", "optimization", because, reference=better)
        w.find(
            "simpler_model_better",
            because + (": this run has not reached what its own model can fit" if same_size
                       else ": the more flexible model failed to optimize"),
            reference=better,
            train_loss=train,
        )
        return _where_stuck(w, ev, th)
    if tiny is not None and tiny["counts"] and not tiny["fit"]:
        because = (
            f"it cannot fit {tiny['n']} training examples (loss {_f(tiny['loss'])}, trivial "
            f"{_f(tiny['trivial'])}) although its {ev['params']:,} parameters could memorize "
            f"their {tiny['targets']} targets"
        )
        w.decide("bias_or_optimization", "optimization", because, tiny=tiny)
        w.find("tiny_subset_not_fit", because + ": an optimization problem (or a bug)", **tiny)
        return _where_stuck(w, ev, th)

    if ev["history"].get("still_falling"):
        h = ev["history"]
        because = (
            f"the training loss still fell {h['fall_rate']:.1%} per epoch at the end: the "
            "run has not shown what the model can fit"
        )
        w.decide("bias_or_optimization", "optimization", because)
        return _where_stuck(w, ev, th)

    reasons = ["no simpler reference reaches a lower training loss"]
    if tiny is not None and tiny["counts"]:
        reasons.append(
            f"it memorizes {tiny['n']} examples (loss {_f(tiny['loss'])}), so it does optimize"
        )
        w.find("tiny_subset_fit", reasons[-1], **tiny)
    elif tiny is not None and tiny.get("cut_short"):
        reasons.append(
            f"the tiny-subset probe ran out of time after {tiny['steps']} steps without fitting: "
            "it says nothing"
        )
        w.find("tiny_subset_uninformative", reasons[-1], **tiny)
    elif tiny is not None:
        reasons.append(
            f"too few parameters ({ev['params']:,}) to memorize {tiny['targets']} targets: "
            "the tiny-subset probe says nothing"
        )
        w.find("tiny_subset_uninformative", reasons[-1], **tiny)
    best_flexible = min(flexible, key=lambda r: r["train_loss"], default=None)
    if (
        best_flexible is not None
        and best_flexible["train_loss"] < train - th.reference_margin * ev["trivial"]["train"]
    ):
        reasons.append(
            f"a more flexible {best_flexible['name']} reference reaches "
            f"{_f(best_flexible['train_loss'])}"
        )
        w.find(
            "flexible_model_better",
            reasons[-1] + f" < {_f(train)}: more capacity helps",
            reference=best_flexible,
            train_loss=train,
        )
    because = "; ".join(reasons)
    w.decide("bias_or_optimization", "model bias", because)
    w.find(
        "model_bias",
        "the model family cannot represent the data well: " + because,
        train_loss=train,
    )
    _symptoms(w, ev, th)
    return w.result("model_bias")


def _where_stuck(w: _Walk, ev: dict, th) -> dict:
    """Which kind of optimization failure, in the order the evidence is most specific."""
    h = ev["history"]
    cp = ev.get("critical_point")
    stuck, because, evidence = None, "", {}
    if h.get("grad_spike"):
        stuck = "exploding_gradients"
        because = (
            f"an epoch's gradient norm reached {_f(h['grad_norm_peak'])}, "
            f"{h['grad_norm_peak'] / h['grad_norm_median']:.0f}x the median {_f(h['grad_norm_median'])}"
        )
        evidence = {"peak": h["grad_norm_peak"], "median": h["grad_norm_median"]}
    elif h.get("oscillating"):
        stuck = "lr_too_large"
        because = (
            f"the training loss rose in {h['rise_fraction']:.0%} of the epochs in the "
            "second half: oscillating"
        )
        evidence = {"rise_fraction": h["rise_fraction"]}
    elif h.get("still_falling"):
        stuck = "not_converged"
        because = (
            f"the training loss still fell {h['fall_rate']:.1%} per epoch over the last "
            f"{h['window']} epochs"
        )
        evidence = {"fall_rate": h["fall_rate"], "window": h["window"]}
    elif cp is not None and cp.get("lambda_max") is not None:
        small = cp["descent_gain"] < th.small_gradient_gain * ev["trivial"]["train"]
        negative = cp["lambda_min"] < -th.negative_curvature * abs(cp["lambda_max"])
        grad_text = (
            f"gradient norm {_f(cp['grad_norm'])}: the best step along it gains "
            f"{_f(cp['descent_gain'])} ({'small' if small else 'not small'}, bar "
            f"{_f(th.small_gradient_gain * ev['trivial']['train'])})"
        )
        curv_text = f"Hessian eigenvalues in [{_f(cp['lambda_min'])}, {_f(cp['lambda_max'])}]"
        evidence = dict(cp)
        if small and negative:
            stuck, because = "saddle_point", f"{grad_text}; {curv_text}: clearly negative curvature"
        elif small:
            stuck, because = (
                "local_minimum",
                f"{grad_text}; {curv_text}: no clearly negative curvature",
            )
        else:
            stuck, because, ratio = _step_size(h, cp, ev.get("optimizer"), th, grad_text)
            if ratio is not None:
                evidence["step_ratio"] = ratio
    else:
        stuck = "stalled"
        because = (
            f"the training loss changed {h.get('fall_rate', 0):.2%} per epoch at the end; "
            "no critical-point analysis to tell a saddle from a valley (diagnose.hessian=never?)"
        )
    w.decide("where_stuck", stuck, because, **evidence)
    w.find(stuck, because, **evidence)
    _symptoms(w, ev, th)
    return w.result("optimization", stuck)


def _step_size(h: dict, cp: dict, optimizer: dict | None, th, grad_text: str):
    """A gradient that is not small, yet the loss does not fall: steps too large, or too small?

    For SGD (with momentum m) the step along the gradient is lr / (1 - m) times its norm;
    times the curvature along it, `step_ratio` ~ 1 overshoots the valley floor (the notes'
    oscillation) and << 1 crawls. Adaptive optimizers scale each step by their own
    statistics, so for them a stalled loss counts as the notes' learning rate too large.
    """
    ratio = None
    if optimizer is not None and optimizer.get("sgd") and cp.get("curvature_along_gradient"):
        step = optimizer["lr"] / (1 - (optimizer.get("momentum") or 0.0))
        ratio = step * cp["curvature_along_gradient"]
    fell = f"the loss fell {h.get('fall_rate', 0):.2%} per epoch at the end"
    if ratio is not None and ratio < th.small_step_ratio:
        because = (
            f"{fell} while the {grad_text}; a step of lr {optimizer['lr']:.3g} is {ratio:.1e} of "
            "the step the curvature along the gradient allows: learning rate too small"
        )
        return "not_converged", because, ratio
    if ratio is None and not h.get("stalled"):
        return "not_converged", f"{fell} and the {grad_text}: not done yet", ratio
    size = f"; the step is {ratio:.2g}x the curvature's limit" if ratio is not None else ""
    return "lr_too_large", f"{fell} while the {grad_text}{size}: bouncing across a valley", ratio


def _symptoms(w: _Walk, ev: dict, th) -> None:
    """Findings that can accompany any branch: gradients by depth, dead units, input scale."""
    g = ev.get("gradients")
    if g and g.get("ratio") is not None:
        if g["ratio"] < th.vanishing_ratio:
            w.find(
                "vanishing_gradients",
                f"the first layer's gradient ({_f(g['first'])} per weight) is {g['ratio']:.1e} of "
                f"the last layer's ({_f(g['last'])}): it barely learns",
                **g,
            )
        elif g["ratio"] > 1 / th.vanishing_ratio:
            w.find(
                "exploding_gradients",
                f"the first layer's gradient is {g['ratio']:.1e}x the last layer's: "
                "gradients grow with depth",
                **g,
            )
    d = ev.get("dead_relu")
    if d and d["units"] and d["fraction"] > th.dead_relu_fraction:
        w.find(
            "dead_relus",
            f"{d['fraction']:.0%} of {d['units']} ReLU units never fire on the "
            "training data: they get no gradient",
            **d,
        )
    x = ev.get("inputs")
    if x and x.get("spread", 0) > th.input_scale_ratio:
        w.find(
            "badly_scaled_inputs",
            f"input features differ in scale by {x['spread']:.0f}x: an elongated error surface",
            **x,
        )


def _wrong_often(exact: dict | None, split: str, th) -> bool:
    """seq2seq: whole targets wrong more often than large_loss_fraction (the trivial
    predictor gets ~all of them wrong), however small the per-token loss."""
    return exact is not None and 1 - exact[split] > th.large_loss_fraction


def _exact_text(exact: dict | None, split: str, th) -> str:
    if exact is None:
        return ""
    return (f"; {split} exact match {exact[split]:.3f}, so {1 - exact[split]:.3f} of whole "
            f"targets wrong vs {th.large_loss_fraction:g}")


def _heldout(w: _Walk, ev: dict, th, refs: list[dict]) -> dict:
    loss, trivial = ev["loss"], ev["trivial"]
    h = ev["history"]
    val_bar = th.large_loss_fraction * trivial["val"]
    ref_val = min(
        (r for r in refs if r.get("val_loss") is not None),
        key=lambda r: r["val_loss"],
        default=None,
    )
    ref_val_better = (
        ref_val is not None
        and loss["val"] > ref_val["val_loss"] + th.reference_margin * trivial["val"]
    )
    exact = ev.get("exact")
    val_large = loss["val"] > val_bar or ref_val_better or _wrong_often(exact, "val", th)
    test_bar = th.large_loss_fraction * trivial["test"]
    test_large = loss["test"] > test_bar or _wrong_often(exact, "test", th)
    shift = ev.get("test_shift")
    val_text = (
        f"val {_f(loss['val'])} vs {th.large_loss_fraction:g} x trivial {_f(trivial['val'])}"
        f" = {_f(val_bar)}"
        + (f", {ref_val['name']} reference val {_f(ref_val['val_loss'])}" if ref_val else "")
        + _exact_text(exact, "val", th)
    )
    test_text = f"test {_f(loss['test'])} vs {_f(test_bar)}{_exact_text(exact, 'test', th)}; " + (
        f"test split shifted ({shift})"
        if shift
        else "test comes from the training distribution (data.test_shift=null): "
        "a mismatch cannot be detected"
    )
    heldout = val_large or test_large
    w.decide(
        "heldout_large",
        "yes" if heldout else "no",
        f"{val_text}; {test_text}",
        val_loss=loss["val"],
        test_loss=loss["test"],
        val_large_above=val_bar,
        test_large_above=test_bar,
        test_shift=shift,
        exact=exact,
    )
    _overtraining(w, h, th, trivial["val"])
    if not heldout:
        w.find(
            "good",
            f"train {_f(loss['train'])}, val {_f(loss['val'])}, test {_f(loss['test'])}: "
            "small against the trivial predictor and the references"
            + ("" if exact is None else ", and whole targets are right at least "
               f"{1 - th.large_loss_fraction:g} of the time"),
            **loss,
        )
        _symptoms(w, ev, th)
        return w.result("good")
    if val_large:
        gap = loss["val"] - loss["train"]
        because = (
            f"{val_text}; gap val - train = {_f(gap)}; validation lowest at epoch "
            f"{h.get('min_val_epoch')} ({_f(h.get('min_val_loss'))})"
        )
        w.decide("overfit_or_mismatch", "overfitting", because)
        w.find(
            "overfitting",
            because,
            gap=gap,
            train_loss=loss["train"],
            val_loss=loss["val"],
            min_val_epoch=h.get("min_val_epoch"),
            min_val_loss=h.get("min_val_loss"),
            reference=ref_val,
        )
        _symptoms(w, ev, th)
        return w.result("overfitting")
    if shift:
        because = f"val {_f(loss['val'])} is small but the shifted ({shift}) test {_f(loss['test'])} is large"
        w.decide("overfit_or_mismatch", "mismatch", because)
        w.find(
            "mismatch",
            because + ": train and test come from different distributions; more "
            "data of the training kind cannot fix it",
            test_shift=shift,
            **loss,
        )
        _symptoms(w, ev, th)
        return w.result("mismatch")
    because = (
        f"test {_f(loss['test'])} is large but val {_f(loss['val'])} is small and both come "
        "from the training distribution: chance or a too-small test split, not a mismatch"
    )
    w.decide("overfit_or_mismatch", "undecided", because)
    w.find("test_large_in_distribution", because, **loss)
    return w.result("inconclusive")


def _overtraining(w: _Walk, h: dict, th, trivial_val: float) -> None:
    saves = h.get("early_stopping_saves")
    if saves is not None and saves > th.overtraining_fraction * trivial_val:
        w.find(
            "overtraining",
            f"validation loss was lowest at epoch {h['min_val_epoch']} ({_f(h['min_val_loss'])}) "
            f"and ended at {_f(h['final_val_loss'])}: stopping there would have saved {_f(saves)} "
            f"and {h['epochs_after_min_val']} epochs",
            min_val_epoch=h["min_val_epoch"],
            min_val_loss=h["min_val_loss"],
            final_val_loss=h["final_val_loss"],
            saves=saves,
            epochs_saved=h["epochs_after_min_val"],
        )
