"""The optimization map on synthetic evidence (no training), and the remedies' commands.

Evidence is written as diagnosis.json would hold it and read back into the typed records
(`Evidence.from_json`); assertions are on answers, codes and numbers.
"""

from __future__ import annotations

import shlex

import pytest
from conftest import compose
from omegaconf import OmegaConf

from dlrun.config import validate
from dlrun.diagnose.catalog import command, merge
from dlrun.diagnose.context import run_context
from dlrun.diagnose.map import MAP, diagnose_evidence
from dlrun.diagnose.questions import Leaf, Outcome, Question, nodes
from dlrun.diagnose.remedies import REMEDIES, remedies
from dlrun.records import Code, Finding, Verdict
from dlrun.records.evidence import Evidence


@pytest.fixture(scope="module")
def th():
    return compose().diagnose  # the shipped thresholds, conf/diagnose/default.yaml


def history(**kw):
    base = {
        "epochs": 20,
        "nonfinite_epoch": None,
        "finite_epochs": 20,
        "window": 5,
        "fall_rate": 0.0,
        "rise_fraction": 0.0,
        "still_falling": False,
        "oscillating": False,
        "stalled": True,
        "grad_spike": False,
        "min_val_epoch": 20,
        "min_val_loss": 0.1,
        "final_val_loss": 0.1,
        "early_stopping_saves": 0.0,
        "epochs_after_min_val": 0,
    }
    return {**base, **kw}


def evidence(train=0.05, val=0.1, test=0.1, trivial=2.3, params=10_000, refs=None, **kw):
    """A run on a 10-class problem: trivial loss ln(10) ~ 2.3 on every split."""
    ev = {
        "params": params,
        "history": history(),
        "loss": {"train": train, "val": val, "test": test},
        "trivial": {"train": trivial, "val": trivial, "test": trivial},
        "references": refs
        if refs is not None
        else [
            {
                "name": "linear",
                "params": 650,
                "train_loss": 0.05,
                "val_loss": 0.15,
                "test_loss": 0.15,
                "expressible": True,
            },
        ],
        "test_shift": None,
    }
    ev.update(kw)
    return ev


def walk(ev: dict, th):
    return diagnose_evidence(Evidence.from_json(ev), th)


def codes(result):
    return [f.code for f in result.findings]


def answers(result):
    return {step.node: step.answer for step in result.path}


def numbers(result, node):
    return next(step.evidence for step in result.path if step.node == node)


def test_healthy_run_is_good_even_with_a_large_val_train_ratio(th):
    # val is 200x train, but small against the trivial predictor and the reference
    result = walk(evidence(train=0.001, val=0.2, test=0.18), th)
    assert result.verdict == "good"
    assert answers(result) == {"train_large": "no", "heldout_large": "no"}
    assert numbers(result, "heldout_large")["test_shift"] is None  # a mismatch cannot be seen


def test_seq2seq_is_judged_by_whole_targets_not_only_per_token_loss(th):
    # the README's RNN encoder-decoder on reversal: small per-token losses, but most held-out
    # sequences wrong (train / val / test exact 0.803 / 0.384 / 0.370)
    exact = {"train": 0.803, "val": 0.384, "test": 0.370}
    result = walk(evidence(train=0.05, val=0.3, test=0.3, exact=exact), th)
    assert result.verdict == "overfitting"
    assert answers(result)["heldout_large"] == "yes"
    assert numbers(result, "heldout_large")["exact"]["val"] == 0.384
    assert walk(evidence(train=0.05, val=0.3, test=0.3, exact={"train": 1.0, "val": 0.95, "test": 0.96}),
                th).verdict == "good"
    # a model that gets most training sequences wrong has a large training error
    result = walk(evidence(train=0.05, val=0.3, test=0.3, exact={"train": 0.3, "val": 0.1, "test": 0.1}), th)
    assert answers(result)["train_large"] == "yes"
    assert numbers(result, "train_large")["exact"]["train"] == 0.3


def test_model_bias_when_no_simpler_model_does_better(th):
    refs = [
        {"name": "linear", "params": 2, "train_loss": 0.33, "val_loss": 0.33, "expressible": True},
        {"name": "mlp[64]", "params": 193, "train_loss": 0.02, "val_loss": 0.02, "expressible": False},
    ]
    tiny = {"n": 32, "targets": 32, "params": 2, "loss": 0.3, "trivial": 1.0, "steps": 300}
    result = walk(
        evidence(train=0.33, val=0.35, test=0.34, trivial=1.0, params=2, refs=refs, tiny=tiny), th
    )
    assert result.verdict == "model_bias"
    assert answers(result)["bias_or_optimization"] == "model bias"
    # a linear model failing on 32 points says nothing; a more flexible model doing better supports bias
    assert {"train_loss_large", "tiny_subset_uninformative", "flexible_model_better"} <= set(
        codes(result)
    )
    assert "tiny_subset_not_fit" not in codes(result)


def test_a_simpler_model_reaching_lower_train_loss_means_optimization(th):
    result = walk(evidence(train=2.30, val=2.30, test=2.30), th)
    assert result.verdict == "optimization"
    assert "simpler_model_better" in codes(result)
    assert result.stuck == "stalled"  # no curvature measured, history flat


def test_tiny_subset_failure_counts_only_for_a_model_that_could_memorize(th):
    no_ref = [{"name": "linear", "params": 650, "train_loss": 2.0, "val_loss": 2.0, "expressible": True}]
    failing = {"n": 32, "targets": 32, "params": 10_000, "loss": 2.0, "trivial": 2.3, "steps": 300}
    result = walk(evidence(train=2.1, val=2.1, test=2.1, refs=no_ref, tiny=failing), th)
    assert result.verdict == "optimization"
    assert "tiny_subset_not_fit" in codes(result)

    small = {**failing, "params": 100}  # 100 parameters cannot memorize 32 labels at ratio 10
    result = walk(evidence(train=2.1, val=2.1, test=2.1, params=100, refs=no_ref, tiny=small), th)
    assert result.verdict == "model_bias"
    assert "tiny_subset_uninformative" in codes(result)

    fitting = {**failing, "loss": 0.01}
    result = walk(evidence(train=2.1, val=2.1, test=2.1, refs=no_ref, tiny=fitting), th)
    assert result.verdict == "model_bias"
    assert "tiny_subset_fit" in codes(result)


def test_target_train_loss_sets_the_bar(th):
    refs = [{"name": "linear", "params": 650, "train_loss": 0.25, "val_loss": 0.3, "expressible": True}]
    assert walk(evidence(train=0.3, val=0.35, test=0.35, refs=refs), th).verdict == "good"
    th = th.copy()
    th.target_train_loss = 0.1
    result = walk(evidence(train=0.3, val=0.35, test=0.35, refs=refs), th)
    assert answers(result)["train_large"] == "yes"
    assert numbers(result, "train_large")["large_above"] == 0.1


def test_non_finite_loss_is_an_optimization_issue(th):
    ev = {"params": 100, "history": history(nonfinite_epoch=3), "lr": 10.0, "test_shift": None}
    result = walk(ev, th)
    assert result.verdict == "optimization"
    assert result.stuck == "exploding_gradients"
    assert "nonfinite_loss" in codes(result)


OPT = dict(train=2.30, val=2.30, test=2.30)  # a simpler reference reaches 0.05: optimization


@pytest.mark.parametrize(
    "hist, cp, stuck",
    [
        (
            {"grad_spike": True, "grad_norm_peak": 500.0, "grad_norm_median": 2.0},
            None,
            "exploding_gradients",
        ),
        ({"oscillating": True, "rise_fraction": 0.6}, None, "lr_too_large"),
        ({"still_falling": True, "fall_rate": 0.05, "stalled": False}, None, "not_converged"),
        (
            {},
            {"grad_norm": 1e-4, "descent_gain": 1e-8, "lambda_max": 1.0, "lambda_min": -0.2},
            "saddle_point",
        ),
        (
            {},
            {"grad_norm": 1e-4, "descent_gain": 1e-8, "lambda_max": 1.0, "lambda_min": -1e-5},
            "local_minimum",
        ),
        (
            {},
            {"grad_norm": 3.0, "descent_gain": 0.5, "lambda_max": 9.0, "lambda_min": -0.2},
            "lr_too_large",
        ),
        ({}, None, "stalled"),
    ],
)
def test_where_an_optimization_issue_is_stuck(th, hist, cp, stuck):
    ev = evidence(**OPT, history=history(**hist))
    if cp is not None:
        ev["critical_point"] = {"loss": 2.3, **cp}
    result = walk(ev, th)
    assert result.verdict == "optimization"
    assert result.stuck == stuck
    assert answers(result)["where_stuck"] == stuck
    assert stuck in codes(result)


def test_sgd_steps_far_below_the_curvature_limit_mean_a_learning_rate_too_small(th):
    cp = {
        "grad_norm": 3.0,
        "descent_gain": 0.5,
        "lambda_max": 9.0,
        "lambda_min": -0.2,
        "curvature_along_gradient": 2.0,
    }
    cp["loss"] = 2.3
    crawling = evidence(
        **OPT, critical_point=cp, optimizer={"name": "sgd", "sgd": True, "lr": 1e-5, "momentum": 0.0}
    )
    result = walk(crawling, th)
    assert result.stuck == "not_converged"
    assert numbers(result, "where_stuck")["step_ratio"] == pytest.approx(2e-5)
    bouncing = evidence(
        **OPT, critical_point=cp, optimizer={"name": "sgd", "sgd": True, "lr": 0.1, "momentum": 0.9}
    )
    assert walk(bouncing, th).stuck == "lr_too_large"  # step 1.0 x curvature 2.0


def test_a_run_still_improving_is_not_called_model_bias(th):
    no_ref = [{"name": "linear", "params": 650, "train_loss": 2.0, "val_loss": 2.0, "expressible": True}]
    falling = history(still_falling=True, fall_rate=0.08, stalled=False)
    result = walk(evidence(train=1.5, val=1.5, test=1.5, refs=no_ref, history=falling), th)
    assert result.verdict == "optimization" and result.stuck == "not_converged"


def test_a_tiny_probe_cut_short_by_the_time_budget_proves_nothing(th):
    no_ref = [{"name": "linear", "params": 650, "train_loss": 2.0, "val_loss": 2.0, "expressible": True}]
    cut = {
        "n": 32,
        "targets": 32,
        "params": 10_000,
        "loss": 2.0,
        "trivial": 2.3,
        "steps": 40,
        "cut_short": True,
    }
    result = walk(evidence(train=2.1, val=2.1, test=2.1, refs=no_ref, tiny=cut), th)
    assert result.verdict == "model_bias"
    assert "tiny_subset_uninformative" in codes(result)


def test_symptoms_are_reported(th):
    ev = evidence(
        **OPT,
        gradients={"first_layer": "a", "last_layer": "b", "first": 1e-7, "last": 1e-3, "ratio": 1e-4},
        dead_relu={"units": 200, "dead": 150, "fraction": 0.75},
        inputs={"spread": 5000.0, "std_min": 0.01, "std_max": 50.0, "max_abs_mean": 0.0},
    )
    found = codes(walk(ev, th))
    assert {"vanishing_gradients", "dead_relus", "badly_scaled_inputs"} <= set(found)
    healthy = evidence(
        **OPT,
        gradients={"first_layer": "a", "last_layer": "b", "first": 1e-3, "last": 2e-3, "ratio": 0.5},
        dead_relu={"units": 200, "dead": 10, "fraction": 0.05},
        inputs={"spread": 1.2, "std_min": 1.0, "std_max": 1.2, "max_abs_mean": 0.0},
    )
    assert not {"vanishing_gradients", "dead_relus", "badly_scaled_inputs"} & set(
        codes(walk(healthy, th))
    )


def test_overfitting_records_gap_and_early_stopping_savings(th):
    hist = history(
        min_val_epoch=6,
        min_val_loss=0.9,
        final_val_loss=1.6,
        early_stopping_saves=0.7,
        epochs_after_min_val=14,
    )
    result = walk(evidence(train=0.002, val=1.6, test=1.5, history=hist), th)
    assert result.verdict == "overfitting"
    assert answers(result) == {
        "train_large": "no",
        "heldout_large": "yes",
        "overfit_or_mismatch": "overfitting",
    }
    found = {f.code: f.evidence for f in result.findings}
    assert found["overfitting"]["gap"] == pytest.approx(1.598)
    assert found["overtraining"]["min_val_epoch"] == 6
    assert found["overtraining"]["saves"] == pytest.approx(0.7)


def test_val_much_worse_than_the_reference_is_overfitting(th):
    refs = [{"name": "linear", "params": 650, "train_loss": 0.05, "val_loss": 0.08, "expressible": True}]
    result = walk(evidence(train=0.001, val=0.42, test=0.4, refs=refs), th)  # 0.42 < 0.2 x 2.3
    assert result.verdict == "overfitting"


def test_mismatch_needs_a_shifted_test_split(th):
    result = walk(evidence(train=0.03, val=0.1, test=4.0, test_shift="rotate"), th)
    assert result.verdict == "mismatch"
    unshifted = walk(evidence(train=0.03, val=0.1, test=4.0), th)
    assert unshifted.verdict == "inconclusive"
    assert "test_large_in_distribution" in codes(unshifted)


def test_no_epochs_is_inconclusive(th):
    assert walk({"params": 1, "history": {"epochs": 0}}, th).verdict == "inconclusive"


def test_escape_result_becomes_a_finding(th):
    ev = evidence(
        **OPT,
        critical_point={
            "loss": 0.0,
            "grad_norm": 0.0,
            "descent_gain": 0.0,
            "lambda_max": 2.0,
            "lambda_min": -2.0,
        },
        escape={"loss_before": 0.0, "loss_after": -0.25, "step": 0.5},
    )
    result = walk(ev, th)
    assert result.stuck == "saddle_point"
    escape = next(f for f in result.findings if f.code == Code.SADDLE_ESCAPE)
    assert escape.evidence["loss_after"] < escape.evidence["loss_before"]


# --- remedies ---------------------------------------------------------------------------


def test_merge_replaces_keys_resets_switched_groups_and_drops_resume():
    user = [
        "model=mlp",
        "model.hidden=[8]",
        "optim.lr=0.5",
        "reg=[l2]",
        "reg.l2.strength=0.1",
        "trainer.resume=outputs/x",
    ]
    assert merge(user, ["optim.lr=0.05"]) == [
        "model=mlp",
        "model.hidden=[8]",
        "optim.lr=0.05",
        "reg=[l2]",
        "reg.l2.strength=0.1",
    ]
    assert merge(user, ["model=cnn"]) == [
        "model=cnn",
        "optim.lr=0.5",
        "reg=[l2]",
        "reg.l2.strength=0.1",
    ]
    # reg grows: the user's own reg.* settings stay
    assert merge(user, ["reg=[l2,dropout]", "reg.dropout.p=0.3"]) == [
        "model=mlp",
        "model.hidden=[8]",
        "optim.lr=0.5",
        "reg=[l2,dropout]",
        "reg.l2.strength=0.1",
        "reg.dropout.p=0.3",
    ]
    assert command(["data=digits"], ["reg=[dropout]"]) == "dlrun data=digits 'reg=[dropout]'"


ALL_FINDINGS = [code for code in REMEDIES if code != Code.NO_HISTORY]
CONTEXTS = [
    (["model=rnn", "data=adding", "data.length=20", "optim=sgd"], 2, None),
    (["model=mlp", "model.activation=sigmoid", "optim=sgd", "data.n_train=200", "reg=[l2]"], 3,
     "noise"),
    (["experiment=optimization"], 3, None),
    (["model=cnn", "model.init=normal", "model.init_std=2"], 3, "rotate"),
    (["model=seq2seq", "model.cell=rnn", "data=reverse"], 2, None),
    (["model=linear", "data=sine", "data.test_shift=extrapolate"], 1, "extrapolate"),
]


def _all_remedies(overrides, rank, shift):
    ctx = run_context(compose(*overrides), overrides, input_rank=rank, test_shift=shift)
    findings = [Finding(c, "", {"step_ratio": 1e-4}) for c in ALL_FINDINGS]
    out = []
    for verdict in Verdict:
        fixes, checks = remedies(Outcome(verdict, None, [], findings), ctx)
        out += fixes + checks
    return out


@pytest.mark.parametrize("overrides, rank, shift", CONTEXTS)
def test_every_remedy_command_composes_and_changes_the_run(overrides, rank, shift):
    """Remedies only use options and keys that exist, and each changes the composed config:
    a remedy that would leave the run as it was (a width doubled from 0) is dropped."""
    before = OmegaConf.to_container(compose(*overrides), resolve=True)
    commands = {r.command for r in _all_remedies(overrides, rank, shift)}
    assert len(commands) >= 6
    for line in commands:
        args = shlex.split(line)
        assert args[0] == "dlrun"
        after = compose(*args[1:])
        validate(after)
        assert OmegaConf.to_container(after, resolve=True) != before, line


def test_a_mismatch_is_never_remedied_by_removing_the_shift():
    ctx = run_context(compose("data=moons", "data.test_shift=rotate"),
                      ["data=moons", "data.test_shift=rotate"], input_rank=1, test_shift="rotate")
    outcome = Outcome(Verdict.MISMATCH, None, [], [Finding(Code.MISMATCH, "", {})])
    fixes, checks = remedies(outcome, ctx)
    assert fixes and not any("test_shift" in o for r in fixes for o in r.overrides)
    assert [o for r in checks for o in r.overrides] == ["data.test_shift=null"]
    assert fixes[0].overrides == ["data.train_shift_fraction=0.3"]


def test_the_map_is_one_structure_of_questions_and_leaves():
    """Every verdict is a leaf; every leaf is reachable; every stuck code has its remedies."""
    leaves = [n for n in nodes(MAP) if isinstance(n, Leaf)]
    questions = [n for n in nodes(MAP) if isinstance(n, Question)]
    assert {leaf.verdict for leaf in leaves} == set(Verdict)
    assert len({q.id for q in questions}) == len(questions) == 5
    stuck = {leaf.stuck for leaf in leaves if leaf.stuck is not None}
    assert len(stuck) == 6 and all(code in REMEDIES for code in stuck)


def test_readme_explains_every_finding_code():
    from conftest import REPO

    readme = (REPO / "README.md").read_text()
    assert not [c for c in Code if f"| `{c}` |" not in readme]
