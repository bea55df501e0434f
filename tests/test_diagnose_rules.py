"""The rules that make a verdict hold on runs nobody designed (issue 14), on synthetic evidence.

Each test is one of the runs the issue names, reduced to the numbers the map reads.
"""

from __future__ import annotations

import pytest
from conftest import compose
from test_diagnose_map import answers, codes, evidence, history, numbers, walk

from dlrun.diagnose.context import run_context
from dlrun.diagnose.remedies import remedies
from dlrun.records import Code, Verdict
from dlrun.records.evidence import Evidence


@pytest.fixture(scope="module")
def th():
    return compose().diagnose


def own(train_loss, cut_short=False):
    return {"train_loss": train_loss, "fit_loss": train_loss, "examples": 640, "method": "lbfgs",
            "iterations": 50, "cut_short": cut_short}


def refs(linear, mlp, linear_val=None, mlp_val=None, expressible=(True, False)):
    return [
        {"name": "linear", "params": 2, "train_loss": linear, "val_loss": linear_val or linear,
         "expressible": expressible[0]},
        {"name": "mlp[64]", "params": 193, "train_loss": mlp, "val_loss": mlp_val or mlp,
         "expressible": expressible[1]},
    ]


SE = {"train": 0.01, "val": 0.02, "test": 0.02}


def test_model_bias_from_the_model_s_own_optimum_whatever_the_convergence(th):
    """`model=linear data=sine trainer.seed=3`: train 2.92, still falling, above the constant
    predictor; the line's own optimum is 0.334, above the bar 0.2: model bias, with the
    unfinished optimization as a second finding; the MLP that reaches 0.017 comes first."""
    falling = history(still_falling=True, fall_rate=0.05, stalled=False)
    ev = evidence(train=2.92, val=2.99, test=3.09, trivial=1.0, params=2, history=falling,
                  refs=refs(0.334, 0.017), own_optimum=own(0.334), loss_se=SE,
                  can_output_constant=True)
    result = walk(ev, th)
    assert result.verdict == Verdict.MODEL_BIAS
    assert {Code.OWN_OPTIMUM_LARGE, Code.NOT_CONVERGED, Code.FLEXIBLE_MODEL_BETTER} <= set(codes(result))
    assert numbers(result, "bias_or_optimization")["reach"] == pytest.approx(0.334)
    ctx = run_context(compose("model=linear", "data=sine"), ["model=linear", "data=sine"],
                      input_rank=1, test_shift=None)
    fixes, _ = remedies(result, ctx, Evidence.from_json(ev))
    assert fixes[0].overrides == ["model=mlp"] and fixes[0].expect == "at best 0.017"
    longer = next(r for r in fixes if r.overrides == ["trainer.epochs=90"])
    assert longer.expect == "at best 0.334, still large"


def test_the_own_optimum_below_the_bar_means_the_run_did_not_optimize(th):
    """A 33-parameter MLP (or a 4-unit GRU) at SGD lr 1e-3 barely moves: the linear
    reference is no better than trivial, but the same architecture fit afresh reaches 0.014."""
    barely = history(fall_rate=0.0005, stalled=True)
    ev = evidence(train=0.70, val=0.70, test=0.70, trivial=0.69, params=33, history=barely,
                  refs=refs(0.69, 0.05), own_optimum=own(0.014), loss_se=SE,
                  can_output_constant=True)
    result = walk(ev, th)
    assert result.verdict == Verdict.OPTIMIZATION
    assert Code.OWN_OPTIMUM_SMALL in codes(result)
    assert numbers(result, "bias_or_optimization")["reach"] == pytest.approx(0.014)


def test_a_loss_above_the_constant_predictor_is_an_optimization_failure(th):
    ev = evidence(train=0.80, val=0.80, test=0.80, trivial=0.69, params=33,
                  refs=refs(0.69, 0.69), loss_se=SE, can_output_constant=True)
    result = walk(ev, th)
    assert result.verdict == Verdict.OPTIMIZATION and Code.WORSE_THAN_CONSTANT in codes(result)
    # within its sampling noise of the constant predictor, it is not
    noisy = {**ev, "loss_se": {"train": 0.1, "val": 0.1, "test": 0.1}}
    assert Code.WORSE_THAN_CONSTANT not in codes(walk(noisy, th))


def test_the_step_size_test_reads_the_learning_rate_the_run_ended_with(th):
    """SGD crawling at the end of a schedule: the step-size test runs before model bias is
    concluded, with the last epoch's learning rate (not optim.lr)."""
    cp = {"loss": 1.0, "grad_norm": 3.0, "descent_gain": 0.5, "lambda_max": 9.0,
          "lambda_min": -0.2, "curvature_along_gradient": 2.0}
    ev = evidence(train=1.0, val=1.0, test=1.0, trivial=1.0, params=33,
                  refs=refs(1.0, 1.0, expressible=(False, False)), critical_point=cp,
                  optimizer={"name": "sgd", "sgd": True, "lr": 1e-4, "configured_lr": 30.0})
    result = walk(ev, th)
    assert result.verdict == Verdict.OPTIMIZATION and result.stuck == Code.NOT_CONVERGED
    assert numbers(result, "bias_or_optimization")["step_ratio"] == pytest.approx(2e-4)
    ctx = run_context(compose("optim=sgd", "optim.lr=30", "sched=plateau"),
                      ["optim=sgd", "optim.lr=30", "sched=plateau"], input_rank=3, test_shift=None)
    fixes, _ = remedies(result, ctx, Evidence.from_json(ev))
    assert fixes[0].overrides == ["sched=constant"]  # the schedule, not optim.lr, made it small


def test_a_reference_counts_only_when_the_architecture_can_express_it(th):
    """A bottleneck MLP (hidden=[1,256]) has more parameters than mlp[64], which fits the
    spirals; but it cannot express it, and fit afresh it stays above the bar: model bias."""
    ev = evidence(train=0.6, val=0.6, test=0.6, trivial=1.1, params=900,
                  refs=refs(0.9, 0.05, expressible=(False, False)), own_optimum=own(0.55),
                  loss_se=SE)
    result = walk(ev, th)
    assert result.verdict == Verdict.MODEL_BIAS
    assert Code.OWN_OPTIMUM_LARGE in codes(result)
    # the same references, counted by size, would have said optimization
    counted = walk({**ev, "references": refs(0.9, 0.05, expressible=(True, True))}, th)
    assert counted.verdict == Verdict.OPTIMIZATION


def test_an_own_optimum_cut_short_or_hampered_proves_only_what_it_reached(th):
    cut = evidence(train=1.0, val=1.0, test=1.0, trivial=1.0, params=5000,
                   refs=refs(0.95, 0.9, expressible=(False, False)),
                   own_optimum=own(0.6, cut_short=True),
                   history=history(still_falling=True, fall_rate=0.05, stalled=False))
    assert walk(cut, th).verdict == Verdict.OPTIMIZATION  # the history decides instead
    vanishing = {**cut, "own_optimum": own(0.6), "history": history(),
                 "time_gradients": {"steps": 80, "early": 1e-13, "late": 1.0, "ratio": 1e-13}}
    result = walk(vanishing, th)
    assert result.verdict == Verdict.OPTIMIZATION
    assert Code.VANISHING_THROUGH_TIME in codes(result)


def test_vanishing_through_time_puts_a_gated_cell_first(th):
    ev = evidence(train=1.0, val=1.1, test=1.05, trivial=1.0, params=4400,
                  refs=refs(0.86, 0.82, expressible=(False, False)),
                  time_gradients={"steps": 80, "early": 2e-13, "late": 1.0, "ratio": 2e-13})
    result = walk(ev, th)
    overrides = ["model=rnn", "data=adding", "data.length=80", "optim=sgd"]
    ctx = run_context(compose(*overrides), overrides, input_rank=2, test_shift=None)
    fixes, _ = remedies(result, ctx, Evidence.from_json(ev))
    assert fixes[0].overrides == ["model=gru"]
    assert ["data.length=40"] in [r.overrides for r in fixes]


def test_a_healthy_run_on_noisy_data_is_good(th):
    """`data=moons optim=sgd optim.lr=0.25 trainer.epochs=15 trainer.seed=6`: val 0.155 is
    just above 0.2 x trivial 0.69, but 0.048 above train is within the sampling noise of a
    160-example validation split, and the reference that fits as well validates no better."""
    ev = evidence(train=0.107, val=0.155, test=0.104, trivial=0.693, params=17000,
                  refs=refs(0.30, 0.10, linear_val=0.31, mlp_val=0.12),
                  loss_se={"train": 0.012, "val": 0.028, "test": 0.02})
    result = walk(ev, th)
    assert result.verdict == Verdict.GOOD
    n = numbers(result, "heldout_large")
    assert n["val_gap"] < n["val_gap_noise"]


def test_a_large_significant_gap_is_overfitting_even_when_the_references_do_no_better(th):
    ev = evidence(train=0.3, val=1.0, test=1.0, trivial=2.3, params=17000,
                  refs=refs(1.5, 0.6, linear_val=1.6, mlp_val=1.2),
                  loss_se={"train": 0.01, "val": 0.05, "test": 0.05})
    assert walk(ev, th).verdict == Verdict.OVERFITTING


def test_a_test_loss_many_times_the_validation_loss_is_a_mismatch_when_shifted(th):
    """An LSTM on `data=adding data.test_shift=scale`: val 0.010, test 0.99; the shifted
    test split's own trivial loss (6) is no bar for it."""
    base = dict(train=0.008, val=0.010, params=18000, refs=refs(0.86, 0.8),
                loss_se={"train": 0.001, "val": 0.002, "test": 0.08})
    ev = evidence(test=0.99, **base)
    ev["trivial"] = {"train": 1.0, "val": 1.0, "test": 6.0}
    shifted = walk({**ev, "test_shift": "scale"}, th)
    assert shifted.verdict == Verdict.MISMATCH
    assert answers(shifted)["overfit_or_mismatch"] == "mismatch"
    unshifted = walk(ev, th)
    assert unshifted.verdict == Verdict.INCONCLUSIVE
    assert Code.TEST_LARGE_IN_DISTRIBUTION in codes(unshifted)


def test_a_short_history_says_so_instead_of_reading_a_trend(th):
    one_epoch = {"epochs": 1, "nonfinite_epoch": None, "finite_epochs": 1,
                 "min_val_epoch": 1, "min_val_loss": 2.3, "final_val_loss": 2.3,
                 "early_stopping_saves": 0.0, "epochs_after_min_val": 0}
    result = walk(evidence(train=2.3, val=2.3, test=2.3, history=one_epoch), th)
    assert Code.SHORT_HISTORY in codes(result)
    stuck = next(d for d in result.path if d.node == "where_stuck")
    assert stuck.evidence["fall_rate"] is None


def test_probe_failures_and_budget_cuts_are_findings(th):
    ev = evidence(failed=[{"probe": "critical_point", "error": "derivative not implemented"}],
                  cut_short=["own_optimum"])
    found = {f.code: f.evidence for f in walk(ev, th).findings}
    assert found[Code.PROBE_FAILED]["probe"] == "critical_point"
    assert found[Code.PROBES_CUT_SHORT]["probes"] == ["own_optimum"]


def test_a_non_convex_fit_stuck_at_the_constant_predictor_proves_no_bias(th):
    """A 4-unit GRU on parity: fit afresh it stays on the plateau at ln 2 where it started;
    that is where the run is stuck too, not where the architecture must stay. A logistic
    regression on circles at the same loss is at its optimum: its loss is convex."""
    base = dict(train=0.6995, val=0.70, test=0.70, trivial=0.6931, params=100,
                refs=refs(0.69, 0.49, expressible=(False, False)),
                loss_se={"train": 3e-4, "val": 6e-4, "test": 6e-4}, can_output_constant=True)
    plateau = walk(evidence(**base, own_optimum=own(0.6929)), th)
    assert plateau.verdict == Verdict.OPTIMIZATION
    assert Code.WORSE_THAN_CONSTANT in codes(plateau)
    convex = walk(evidence(**base, own_optimum={**own(0.6929), "convex": True}), th)
    assert convex.verdict == Verdict.MODEL_BIAS and Code.OWN_OPTIMUM_LARGE in codes(convex)


def test_a_reference_that_validates_only_as_well_within_noise_does_not_make_train_large(th):
    """`data=breast_cancer model.hidden=[64]`: train 0.071 (bar 0.13), the mlp[64] reference
    reaches 0.001 on train but 0.077 on val against the run's 0.074, val noise 0.048: no
    evidence that training further matters, so the run is good; a reference that validates
    better beyond the noise makes the same training loss large."""
    def ev(ref_val):
        return evidence(train=0.071, val=0.074, test=0.106, trivial=0.66, params=2000,
                        history=history(), refs=refs(0.031, 0.001, 0.08, ref_val,
                                                     expressible=(True, True)),
                        loss_se={"train": 0.01, "val": 0.024, "test": 0.04})
    assert answers(walk(ev(0.077), th))["train_large"] == "no"
    assert answers(walk(ev(0.071), th))["train_large"] == "no"  # better, but within noise
    assert answers(walk(ev(0.01), th))["train_large"] == "yes"
