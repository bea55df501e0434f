"""Every verdict and finding code the diagnosis can write, in one place.

They are `StrEnum`s: a member compares and serializes as its string, so diagnosis.json
and the README keep the plain names, and a typo in code is an AttributeError.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """Where the run ends on the optimization map."""

    MODEL_BIAS = "model_bias"
    OPTIMIZATION = "optimization"
    OVERFITTING = "overfitting"
    MISMATCH = "mismatch"
    GOOD = "good"
    INCONCLUSIVE = "inconclusive"


class Code(StrEnum):
    """A finding: one fact the diagnosis established, with its evidence."""

    # is the training loss large?
    TRAIN_LOSS_LARGE = "train_loss_large"
    # model bias or optimization?
    SIMPLER_MODEL_BETTER = "simpler_model_better"
    TINY_SUBSET_NOT_FIT = "tiny_subset_not_fit"
    TINY_SUBSET_FIT = "tiny_subset_fit"
    TINY_SUBSET_UNINFORMATIVE = "tiny_subset_uninformative"
    FLEXIBLE_MODEL_BETTER = "flexible_model_better"
    OWN_OPTIMUM_SMALL = "own_optimum_small"
    OWN_OPTIMUM_LARGE = "own_optimum_large"
    WORSE_THAN_CONSTANT = "worse_than_constant"
    MODEL_BIAS = "model_bias"
    # where an optimization issue is stuck
    NONFINITE_LOSS = "nonfinite_loss"
    EXPLODING_GRADIENTS = "exploding_gradients"
    LR_TOO_LARGE = "lr_too_large"
    NOT_CONVERGED = "not_converged"
    SADDLE_POINT = "saddle_point"
    LOCAL_MINIMUM = "local_minimum"
    STALLED = "stalled"
    SADDLE_ESCAPE = "saddle_escape"
    # symptoms beside any branch
    VANISHING_GRADIENTS = "vanishing_gradients"
    VANISHING_THROUGH_TIME = "vanishing_through_time"
    EXPLODING_THROUGH_TIME = "exploding_through_time"
    DEAD_RELUS = "dead_relus"
    BADLY_SCALED_INPUTS = "badly_scaled_inputs"
    # is the held-out loss large?
    OVERFITTING = "overfitting"
    OVERTRAINING = "overtraining"
    MISMATCH = "mismatch"
    TEST_LARGE_IN_DISTRIBUTION = "test_large_in_distribution"
    GOOD = "good"
    # what the diagnosis could not measure
    NO_HISTORY = "no_history"
    SHORT_HISTORY = "short_history"
    PROBE_FAILED = "probe_failed"
    PROBES_CUT_SHORT = "probes_cut_short"
