"""`diagnose_run`: after training, walk the map, running each probe when a question needs it.

The one-pass probes (the trivial predictor, per-example loss spreads, gradient and
activation signals) run first; then the map asks for the iterative ones as its questions
need them: the references for "is the training loss large?", the architecture's own
optimum (and the tiny-subset and step-size tests when that does not settle it) for
"model bias or optimization?", the critical-point analysis (Lanczos on Hessian-vector
products) when the history cannot place an optimization issue (always with
diagnose.hessian=always). Each shares out what is left of the budget, and a probe that
raises is recorded, never fatal. Every probe's seconds are recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dlrun.diagnose import hessian, probes
from dlrun.diagnose.budget import Budget
from dlrun.diagnose.context import run_context
from dlrun.diagnose.history import analyze_history
from dlrun.diagnose.map import diagnose_evidence
from dlrun.diagnose.optimum import own_optimum
from dlrun.diagnose.references import (
    expressible,
    fit_references,
    outputs_a_constant,
    tiny_subset,
    trivial_losses,
)
from dlrun.diagnose.remedies import remedies
from dlrun.models import build_model
from dlrun.records import Diagnosis, EpochRow
from dlrun.records.evidence import Evidence, OptimizerInfo, ProbeFailure, SplitLosses, TinySubset
from dlrun.train.losses import IGNORE
from dlrun.train.optimizers import build_optimizer

# probes that read the trained weights (not after the loss became non-finite)
TRAINED = ("spread", "signals", "critical_point", "escape")
# probes whose result depends on the data, the architecture, the loss and the seed, not on
# the trained weights: runs that share these (a stacked sweep's jobs) measure them once
SHAREABLE = {"trivial": "trivial", "references": "references", "own_optimum": "own_optimum"}
# the name each probe's seconds go under in diagnosis.json's `cost`
COST_NAMES = {"tiny": "tiny_subset", "critical_point": "hessian"}
SPLITS = ("train", "val", "test")


class Prober:
    """Runs the probes the map asks for (each once) on the trained model, within the budget.

    `measure(name)` fills one field of the evidence and says whether it learned anything.
    A probe that raises never costs the run its diagnosis: its failure is recorded in the
    evidence (`failed`) and the map decides with what it has.
    """

    def __init__(self, cfg: DictConfig, model, data, loss, ev: Evidence, budget: Budget,
                 shared: dict | None = None):
        """`shared`: results of the SHAREABLE probes, kept across the runs that pass the same
        dict (keyed by everything those probes read from the config)."""
        self.cfg, self.th, self.seed = cfg, cfg.diagnose, cfg.trainer.seed
        self.shared = shared
        self.share_key = repr([OmegaConf.to_container(cfg.get(g), resolve=True)
                               for g in ("data", "model", "reg", "diagnose")] + [self.seed])
        self.model, self.data, self.loss, self.ev, self.budget = model, data, loss, ev, budget
        self.sample = probes.sample(data.x_train, data.y_train, self.th.hessian_max_examples,
                                    self.seed)
        self.seconds: dict[str, float] = {}
        self.done: set[str] = set()
        self._hessian_extras = None  # (eigenvector of lambda_min, gradient) for the escape

    def measure(self, name: str) -> bool:
        if name in self.done or (name in TRAINED and self.ev.loss is None):
            return False  # measured already, or a probe of weights that are not finite
        self.done.add(name)
        if self.shared is not None and name in SHAREABLE:
            return self._measure_shared(name)
        return self._measure(name)

    def _measure_shared(self, name: str) -> bool:
        """The result another run with the same shared dict measured, else measured now."""
        key, field = (name, self.share_key), SHAREABLE[name]
        if key not in self.shared:
            learned = self._measure(name)
            self.shared[key] = (getattr(self.ev, field), learned, name in (self.ev.cut_short or []))
            return learned
        value, learned, cut = self.shared[key]
        setattr(self.ev, field, value)
        if cut:
            self._cut(name)
        return learned

    def _measure(self, name: str) -> bool:
        started = time.perf_counter()
        deadline = self.budget.deadline(name)
        try:
            if deadline.passed:  # no time left for an iterative probe: not even one step
                self._cut(name)
                return False
            learned = getattr(self, f"_{name}")(deadline)
            if deadline.refused and name not in (self.ev.cut_short or []):
                self._cut(name)
            return learned
        except Exception as error:  # any probe may meet a layer it cannot handle
            message = " ".join(str(error).split())[:300] or type(error).__name__
            self.ev.failed = [*(self.ev.failed or []), ProbeFailure(name, message)]
            return False
        finally:
            key = COST_NAMES.get(name, name)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started

    def _cut(self, name: str) -> None:
        self.ev.cut_short = [*(self.ev.cut_short or []), name]

    def _trivial(self, deadline) -> bool:
        self.ev.trivial = trivial_losses(self.data, self.loss)
        return True

    def _spread(self, deadline) -> bool:
        self.ev.loss_se = probes.loss_spread(self.model, self.loss, self.data)
        return True

    def _references(self, deadline) -> bool:
        th = self.th
        refs = fit_references(
            self.data, self.loss, hidden=th.reference_hidden, iterations=th.reference_steps,
            max_examples=th.reference_max_examples, seed=self.seed, deadline=deadline)
        for ref in refs:
            ref.expressible = expressible(ref.name, self.model, th.reference_hidden)
        self.ev.references = refs
        return True

    def _own_optimum(self, deadline) -> bool:
        th, data = self.th, self.data
        bar = (th.target_train_loss if th.target_train_loss is not None
               else th.large_loss_fraction * self.ev.trivial.train)
        self.ev.own_optimum = own_optimum(
            lambda: build_model(self.cfg.model, data).to(data.x_train.device), self.loss, data,
            bar=bar, max_examples=th.reference_max_examples, iterations=th.own_optimum_steps,
            seed=self.seed, deadline=deadline)
        return True

    def _signals(self, deadline) -> bool:
        x, y = self.sample
        self.ev.gradients = probes.layer_gradients(self.model, self.loss, x, y)
        self.ev.dead_relu = probes.dead_relus(self.model, x)
        self.ev.inputs = probes.input_scale(self.data.x_train)
        self.ev.time_gradients = probes.time_gradients(self.model, self.loss, x, y)
        return True

    def _tiny(self, deadline) -> bool:
        """Only for a model with enough parameters to memorize the subset."""
        th, data = self.th, self.data
        y = data.y_train[: th.tiny_subset_size]
        targets = y.numel() if data.task == "regression" else int((y != IGNORE).sum())
        self.ev.tiny = TinySubset(n=len(y), targets=int(targets), params=self.ev.params)
        if self.ev.params < th.memorize_ratio * targets:
            return True
        device = data.x_train.device
        self.ev.tiny = tiny_subset(
            lambda: build_model(self.cfg.model, data).to(device),
            lambda params: build_optimizer(instantiate(self.cfg.optim), params, device),
            self.loss, data, size=th.tiny_subset_size, steps=th.tiny_subset_steps,
            seed=self.seed, deadline=deadline)
        return True

    def _critical_point(self, deadline) -> bool:
        model, (x, y) = self.model, self.sample
        was_training = model.training
        try:
            full = probes.full_gradient(model, self.loss, self.data.x_train, self.data.y_train,
                                        deadline=deadline)
            if full is None or not deadline.allows():
                return False
            model.eval()  # dropout off, batch-norm running statistics: a fixed loss surface
            f = hessian.loss_of_params(model, self.loss, x, y)  # curvature from a sample
            self.ev.critical_point, *self._hessian_extras = hessian.critical_point(
                f, dict(model.named_parameters()), self.th.hessian_iterations, self.seed,
                deadline, gradient=full)
        finally:
            model.train(was_training)
        return True

    def _initial_curvature(self, deadline) -> bool:
        """lambda_max at a fresh start, on a sample: how large a step SGD could take there."""
        x, y = self.sample
        with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
            torch.manual_seed(self.seed)
            model = build_model(self.cfg.model, self.data).to(x.device).eval()
        f = hessian.loss_of_params(model, self.loss, x, y)
        point, _, _ = hessian.critical_point(f, dict(model.named_parameters()), 10, self.seed,
                                             deadline)
        self.ev.initial_curvature = point.lambda_max
        return True

    def _escape(self, deadline) -> bool:
        """A step along the negative-curvature eigenvector, judged on the whole training split."""
        if self._hessian_extras is None:
            return False
        direction, gradient = self._hessian_extras
        was_training = self.model.training
        self.model.eval()
        try:
            whole = hessian.loss_of_params(self.model, self.loss, self.data.x_train,
                                           self.data.y_train)
            self.ev.escape = hessian.escape(whole, dict(self.model.named_parameters()),
                                            direction, gradient, deadline=deadline)
        finally:
            self.model.train(was_training)
        return True


def gather_evidence(cfg: DictConfig, model, data, rows: list[EpochRow],
                    final_epoch: int | None) -> Evidence:
    """What the run itself says: its history, its final (or restored) losses, its optimizer."""
    th = cfg.diagnose
    name = cfg.optim._target_.rsplit(".", 1)[-1].lower()
    # the step-size test reads the learning rate the schedule reached, not optim.lr
    used = next((r.lr for r in reversed(rows) if r.lr is not None), cfg.optim.lr)
    ev = Evidence(
        params=sum(p.numel() for p in model.parameters()),
        history=analyze_history(rows, th),
        test_shift=getattr(data, "test_shift", None),
        lr=cfg.optim.lr,
        optimizer=OptimizerInfo(name, name == "sgd", used,
                                OmegaConf.select(cfg, "optim.momentum", default=0.0),
                                configured_lr=cfg.optim.lr if used != cfg.optim.lr else None),
        can_output_constant=outputs_a_constant(model),
    )
    if rows and ev.history.nonfinite_epoch is None:
        final = next((r for r in rows if r.epoch == final_epoch), rows[-1])
        ev.loss = SplitLosses(*(final.loss(s) for s in SPLITS))
        if final.metric("train", "exact") is not None:  # seq2seq: whole sequences
            ev.exact = SplitLosses(*(final.metric(s, "exact") for s in SPLITS))
    return ev


def diagnose_run(
    cfg: DictConfig,
    model: torch.nn.Module,
    data,
    rows: list[EpochRow],
    loss,
    overrides: list[str],
    *,
    train_seconds: float | None = None,
    final_epoch: int | None = None,
    shared_probes: dict | None = None,
    run_dir: Path | None = None,
) -> Diagnosis | None:
    """The diagnosis of a finished run, or None with diagnose=off.

    `loss` is the loss the run trained with; `overrides` the user's command-line overrides
    (the remedies' commands start from them); `final_epoch` the epoch whose weights the
    model holds when that is not the last (early stopping restored the best);
    `shared_probes` a dict the probes that do not read the trained weights share with other
    runs (a stack's jobs), so that they run once; `run_dir` where its checkpoints are (a
    check can re-test them with mode=eval).
    """
    th = cfg.diagnose
    if not th.enabled:
        return None
    ev = gather_evidence(cfg, model, data, rows, final_epoch)
    # probes stop iterating at probe_budget x the run's own time
    prober = Prober(cfg, model, data, loss, ev,
                    Budget(th.probe_budget * train_seconds if train_seconds else None),
                    shared_probes)
    measure = prober.measure
    # the one-pass probes every branch reads, first: the iterative ones then share out
    # exactly the budget that is left (none of them reads non-finite weights)
    for probe in ("trivial", "spread", "signals") if ev.loss is not None else ():
        measure(probe)
    outcome = diagnose_evidence(ev, th, measure)
    if ev.loss is not None and th.hessian == "always":
        measure("critical_point")  # whatever the map needed: then walk it again with it
        outcome = diagnose_evidence(ev, th, measure)

    context = run_context(cfg, overrides, input_rank=len(data.input_shape),
                          test_shift=ev.test_shift, run_dir=run_dir)
    cost = {f"{name}_s": seconds for name, seconds in prober.seconds.items()}
    cost["total_s"] = sum(prober.seconds.values())
    if train_seconds:
        cost["train_s"] = train_seconds
        cost["share_of_training"] = cost["total_s"] / train_seconds
    fixes, checks = remedies(outcome, context, ev)
    return Diagnosis(
        verdict=outcome.verdict, stuck=outcome.stuck, findings=outcome.findings,
        remedies=fixes, checks=checks, path=outcome.path, evidence=ev, cost=cost,
    )
