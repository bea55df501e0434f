"""From a verdict and its findings to remedies the user can paste, as data: `REMEDIES` maps
each finding code to the notes' remedies for it (most promising first), `OFFERED` says
which findings' remedies each verdict offers. No torch here.
"""

from __future__ import annotations

from dlrun.diagnose.catalog import Catalog, Context, command
from dlrun.records import Code, Finding, Remedy, Verdict


def _crawling(c: Catalog, evidence: dict) -> None:
    """The step is a tiny fraction of what the curvature allows: a much larger learning rate."""
    if evidence.get("step_ratio") is not None:
        c.larger_lr(10, "a 10x larger learning rate")


def _rnn_clip(c: Catalog, evidence: dict) -> None:
    if c.ctx.model in ("rnn", "lstm", "gru"):
        c.grad_clip()


def _plain(method):
    """A catalogue method that needs no evidence, as a table entry."""
    return lambda c, evidence: method(c)


def _with(method, *args):
    return lambda c, evidence: method(c, *args)


# The notes' remedies per finding, most promising first. Each entry is called with the
# catalogue and the finding's evidence; the catalogue drops what does not exist or repeats.
REMEDIES: dict[Code, tuple] = {
    Code.NO_HISTORY: (_plain(Catalog.train_a_few_epochs),),
    Code.EXPLODING_GRADIENTS: (_rnn_clip, _with(Catalog.lower_lr, 10),
                               _plain(Catalog.grad_clip), _plain(Catalog.adam)),
    Code.VANISHING_GRADIENTS: (_plain(Catalog.batchnorm), _plain(Catalog.relu),
                               _plain(Catalog.gated_cell), _plain(Catalog.adam)),
    Code.DEAD_RELUS: (_plain(Catalog.leaky_relu), _with(Catalog.lower_lr, 3)),
    Code.BADLY_SCALED_INPUTS: (_plain(Catalog.batchnorm), _plain(Catalog.adam)),
    Code.LR_TOO_LARGE: (_with(Catalog.lower_lr, 10), _plain(Catalog.adam),
                        _plain(Catalog.decay)),
    Code.NOT_CONVERGED: (_crawling, _plain(Catalog.longer), _with(Catalog.larger_lr, 3),
                         _plain(Catalog.adam)),
    Code.SADDLE_POINT: (_plain(Catalog.momentum), _plain(Catalog.adam),
                        _plain(Catalog.smaller_batch), _plain(Catalog.measure_escape)),
    Code.LOCAL_MINIMUM: (_plain(Catalog.momentum), _plain(Catalog.adam),
                         _plain(Catalog.smaller_batch), _plain(Catalog.another_start)),
    Code.STALLED: (_plain(Catalog.momentum), _plain(Catalog.adam),
                   _plain(Catalog.smaller_batch)),
    Code.MODEL_BIAS: (_plain(Catalog.architecture), _plain(Catalog.capacity)),
    Code.OVERFITTING: (_plain(Catalog.more_data), _plain(Catalog.regularize),
                       _plain(Catalog.fewer_params)),
    Code.OVERTRAINING: (_plain(Catalog.stop_early),),
    Code.MISMATCH: (_plain(Catalog.augment_toward_shift), _plain(Catalog.confirm_unshifted)),
}
# which findings' remedies a verdict offers, in this order, and what closes the list
OPTIMIZATION = (Code.EXPLODING_GRADIENTS, Code.VANISHING_GRADIENTS, Code.DEAD_RELUS,
                Code.BADLY_SCALED_INPUTS, Code.LR_TOO_LARGE, Code.NOT_CONVERGED,
                Code.SADDLE_POINT, Code.LOCAL_MINIMUM, Code.STALLED)
OFFERED: dict[Verdict, tuple[Code, ...]] = {
    Verdict.OPTIMIZATION: OPTIMIZATION,
    Verdict.MODEL_BIAS: (Code.MODEL_BIAS,),
    Verdict.OVERFITTING: (Code.OVERFITTING, Code.OVERTRAINING),
    Verdict.MISMATCH: (Code.MISMATCH,),
    Verdict.GOOD: (Code.OVERTRAINING,),
    Verdict.INCONCLUSIVE: (),
}
CLOSING: dict[Verdict, tuple] = {Verdict.OPTIMIZATION: (_plain(Catalog.adam),)}


def remedies(verdict: Verdict, findings: list[Finding], ctx: Context) -> list[Remedy]:
    """The remedies of the verdict's findings, in the table's order, as complete commands."""
    c = Catalog(ctx)
    found = {f.code: f.evidence for f in findings}
    for code in (*OFFERED[Verdict(verdict)], Code.NO_HISTORY):
        if code in found:
            for rule in REMEDIES[code]:
                rule(c, found[code])
    for rule in CLOSING.get(Verdict(verdict), ()):
        rule(c, {})
    return [Remedy(action, command(ctx.overrides, o), o) for action, o in c.items]
