"""From a verdict and its findings to remedies the user can paste, as data: `REMEDIES` maps
each finding code to the notes' remedies for it (most promising first), `OFFERED` says
which findings' remedies each verdict offers. Remedies whose reach the evidence shows
(a reference of that model, the architecture's own optimum, the validation minimum) come
first, lowest first, each saying what it can at best achieve; the others keep the
table's order. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.diagnose.catalog import Catalog, Context, _num, command
from dlrun.diagnose.questions import Outcome, fmt
from dlrun.records import Code, Remedy, Verdict
from dlrun.records.evidence import Evidence


@dataclass
class Outlook:
    """What the evidence says remedies can reach, in the loss of the branch they treat."""

    reach: float | None = None  # the lowest training loss this architecture is known to reach
    train_bar: float | None = None
    flexible: dict[str, float] | None = None  # reference name -> its training loss
    min_val: float | None = None  # the run's validation minimum (what early stopping keeps)
    val_bar: float | None = None
    lr_decayed: bool = False  # the schedule took the learning rate far below optim.lr


def outlook(outcome: Outcome, ev: Evidence | None) -> Outlook:
    if ev is None:
        return Outlook()
    numbers = {k: v for step in outcome.path for k, v in step.evidence.items()}
    opt = ev.optimizer
    return Outlook(
        reach=numbers.get("reach"),
        train_bar=numbers.get("large_above"),
        flexible={r.name: r.train_loss for r in ev.references or [] if r.train_loss is not None},
        min_val=ev.history.min_val_loss,
        val_bar=numbers.get("val_large_above"),
        lr_decayed=bool(opt and opt.configured_lr and opt.lr < opt.configured_lr / 3),
    )


def _plain(method):
    """A catalogue method that needs no evidence, as a table entry."""
    return lambda c, evidence, seen: method(c)


def _with(method, *args):
    return lambda c, evidence, seen: method(c, *args)


def _crawling(c: Catalog, evidence: dict, seen: Outlook) -> None:
    """Steps far below what the curvature allows: a larger learning rate reaches the
    architecture's own optimum (or, when a schedule decayed it, less decay does)."""
    if evidence.get("step_ratio") is None:
        return
    if seen.lr_decayed:
        c.decay_less()
    c.add("a 10x larger learning rate", [f"optim.lr={_num(c.ctx.lr * 10)}"],
          reaches=seen.reach, large_above=seen.train_bar)


def _longer(c: Catalog, evidence: dict, seen: Outlook) -> None:
    c.add("train longer", [f"trainer.epochs={c.ctx.epochs * 3}"], reaches=seen.reach,
          large_above=seen.train_bar)
    c.add("a larger learning rate", [f"optim.lr={_num(c.ctx.lr * 3)}"], reaches=seen.reach,
          large_above=seen.train_bar)


def _flexible_models(c: Catalog, evidence: dict, seen: Outlook) -> None:
    """A more flexible architecture; where a reference of it was fit, what it reaches."""
    mlp = next((loss for name, loss in (seen.flexible or {}).items() if name.startswith("mlp")),
               None)
    ctx = c.ctx
    if ctx.input_rank == 3 and ctx.model in ("linear", "logistic", "mlp"):
        c.add("a CNN: built for images (local patterns, shared weights)", ["model=cnn"])
    if ctx.input_rank == 2 and ctx.model in ("linear", "logistic", "mlp"):
        c.add("a recurrent network (GRU): built for sequences", ["model=gru"])
    if ctx.model in ("linear", "logistic"):
        c.add("a more flexible model: an MLP with hidden layers", ["model=mlp"], reaches=mlp,
              large_above=seen.train_bar)


def _early_stopping(c: Catalog, evidence: dict, seen: Outlook) -> None:
    if c.has("reg", "early_stopping"):
        patience = max(2, min(10, c.ctx.epochs // 10))
        c.add("early stopping at the validation minimum",
              [c.reg("early_stopping"), f"reg.early_stopping.patience={patience}"],
              reaches=seen.min_val, large_above=seen.val_bar)


def _safe_lr(c: Catalog, evidence: dict, seen: Outlook) -> None:
    """A diverged SGD run: the learning rate the curvature at the start allows."""
    safe = evidence.get("safe_lr")
    if safe is not None and safe < c.ctx.lr:
        c.add("a learning rate the curvature at the start allows (1 / lambda_max)",
              [f"optim.lr={_num(min(safe, c.ctx.lr / 10))}"])


def _rnn_clip(c: Catalog, evidence: dict, seen: Outlook) -> None:
    if c.ctx.model in ("rnn", "lstm", "gru"):
        c.grad_clip()


# The notes' remedies per finding, most promising first. Each entry is called with the
# catalogue, the finding's evidence and the outlook; the catalogue drops what does not
# exist, changes nothing, or repeats.
REMEDIES: dict[Code, tuple] = {
    Code.NO_HISTORY: (_plain(Catalog.train_a_few_epochs),),
    Code.EXPLODING_GRADIENTS: (_plain(Catalog.default_init), _safe_lr, _rnn_clip,
                               _with(Catalog.lower_lr, 10), _plain(Catalog.grad_clip),
                               _plain(Catalog.adam)),
    Code.EXPLODING_THROUGH_TIME: (_plain(Catalog.grad_clip), _plain(Catalog.gated_cell),
                                  _plain(Catalog.shorter_sequences)),
    Code.VANISHING_THROUGH_TIME: (_plain(Catalog.gated_cell), _plain(Catalog.shorter_sequences),
                                  _plain(Catalog.adam)),
    Code.VANISHING_GRADIENTS: (_plain(Catalog.batchnorm), _plain(Catalog.relu),
                               _plain(Catalog.gated_cell), _plain(Catalog.adam)),
    Code.DEAD_RELUS: (_plain(Catalog.leaky_relu), _with(Catalog.lower_lr, 3)),
    Code.BADLY_SCALED_INPUTS: (_plain(Catalog.batchnorm), _plain(Catalog.adam)),
    Code.LR_TOO_LARGE: (_with(Catalog.lower_lr, 10), _plain(Catalog.adam),
                        _plain(Catalog.decay)),
    Code.NOT_CONVERGED: (_crawling, _longer, _plain(Catalog.adam)),
    Code.SADDLE_POINT: (_plain(Catalog.momentum), _plain(Catalog.adam),
                        _plain(Catalog.smaller_batch), _plain(Catalog.measure_escape)),
    Code.LOCAL_MINIMUM: (_plain(Catalog.momentum), _plain(Catalog.adam),
                         _plain(Catalog.smaller_batch), _plain(Catalog.another_start)),
    Code.STALLED: (_plain(Catalog.momentum), _plain(Catalog.adam),
                   _plain(Catalog.smaller_batch)),
    Code.MODEL_BIAS: (_flexible_models, _plain(Catalog.capacity)),
    Code.OVERFITTING: (_plain(Catalog.more_data), _plain(Catalog.regularize),
                       _plain(Catalog.fewer_params)),
    Code.OVERTRAINING: (_early_stopping,),
    Code.MISMATCH: (_plain(Catalog.shifted_training_data), _plain(Catalog.augment_toward_shift)),
}
# which findings' remedies a verdict offers, in this order, and what closes the list. A
# gradient that vanishes or explodes is the cause the other symptoms follow from, so its
# remedies come first; then where the run is stuck; then the other symptoms.
PATHOLOGIES = (Code.EXPLODING_GRADIENTS, Code.EXPLODING_THROUGH_TIME,
               Code.VANISHING_THROUGH_TIME, Code.VANISHING_GRADIENTS)
OPTIMIZATION = (*PATHOLOGIES, Code.DEAD_RELUS, Code.BADLY_SCALED_INPUTS, Code.LR_TOO_LARGE,
                Code.NOT_CONVERGED, Code.SADDLE_POINT, Code.LOCAL_MINIMUM, Code.STALLED)
OFFERED: dict[Verdict, tuple[Code, ...]] = {
    Verdict.OPTIMIZATION: OPTIMIZATION,
    Verdict.MODEL_BIAS: (Code.MODEL_BIAS, Code.NOT_CONVERGED),
    Verdict.OVERFITTING: (Code.OVERFITTING, Code.OVERTRAINING),
    Verdict.MISMATCH: (Code.MISMATCH,),
    Verdict.GOOD: (Code.OVERTRAINING,),
    Verdict.INCONCLUSIVE: (),
}
CLOSING: dict[Verdict, tuple] = {
    Verdict.OPTIMIZATION: (_plain(Catalog.adam),),
    Verdict.OVERFITTING: (_early_stopping,),
}
# checks: commands that change what is measured, never the model (a remedy is never one)
CHECKS: dict[Verdict, tuple] = {Verdict.MISMATCH: (_plain(Catalog.confirm_unshifted),)}


def _expect(candidate) -> str | None:
    if candidate.reaches is None:
        return None
    large = candidate.large_above is not None and candidate.reaches > candidate.large_above
    return f"at best {fmt(candidate.reaches)}" + (", still large" if large else "")


def _remedies(c: Catalog, ctx: Context) -> list[Remedy]:
    return [Remedy(x.action, command(ctx.overrides, x.overrides, ctx.flags), x.overrides, _expect(x))
            for x in c.items]


def remedies(outcome: Outcome, ctx: Context, ev: Evidence | None = None
             ) -> tuple[list[Remedy], list[Remedy]]:
    """The remedies (ranked: what the evidence shows reaching lowest first, then the table's
    order) and the checks of a walked map, as complete commands."""
    seen = outlook(outcome, ev)
    found = {}
    for f in outcome.findings:
        found.setdefault(f.code, f.evidence)
    c = Catalog(ctx)
    offered = OFFERED[outcome.verdict]
    if outcome.stuck in offered:  # after the gradient pathologies that cause it, before the rest
        rest = [code for code in offered if code != outcome.stuck]
        causes = [code for code in rest if code in PATHOLOGIES]
        offered = (*causes, outcome.stuck, *[code for code in rest if code not in PATHOLOGIES])
    for code in (*offered, Code.NO_HISTORY):
        for rule in REMEDIES[code] if code in found else ():
            rule(c, found[code], seen)
    for rule in CLOSING.get(outcome.verdict, ()):
        rule(c, {}, seen)
    c.items.sort(key=lambda x: (x.reaches is None, x.reaches or 0.0))  # stable: table order
    checks = Catalog(ctx)
    for rule in CHECKS.get(outcome.verdict, ()):
        rule(checks, {}, seen)
    return _remedies(c, ctx), _remedies(checks, ctx)
