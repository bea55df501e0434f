"""Schema of the `diagnose` group: the optimization map's probes and thresholds.

"Large" is never absolute: a loss is judged against the trivial predictor (the training
mean / class prior), simpler reference models fit to the same training data, and the
user's own target when one is given (README "Diagnosis").
"""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import NON_NEGATIVE, POSITIVE, at_least, knob, one_of


@dataclass
class DiagnoseConfig:
    enabled: bool = knob(True, "false (or diagnose=off): no probes, no diagnosis.json")
    # --- is a loss large?
    target_train_loss: float | None = knob(
        None, "your bar for a small training loss; null: judge by large_loss_fraction")
    large_loss_fraction: float = knob(
        0.2, "a loss above this fraction of the trivial predictor's loss is large")
    reference_margin: float = knob(
        0.1, "a reference beats your model when its loss is lower by more than this fraction "
        "of the trivial loss")
    # --- probes after training (their seconds are recorded in diagnosis.json)
    reference_hidden: int = knob(
        64, "width of the one-hidden-layer reference MLP (the linear/logistic one is always fit)")
    reference_steps: int = knob(30, "L-BFGS iterations for each reference model (full batch)")
    reference_max_examples: int = knob(
        4096, "references (and your model's own optimum) fit on at most this many training examples")
    own_optimum_steps: int = knob(
        50, "L-BFGS iterations for a fresh copy of your model (then Adam, up to 20x as many "
        "steps, if that is not below the bar): what your architecture can reach; 0: off",
        at_least(0))
    tiny_subset_size: int = knob(
        32, "examples in the tiny-subset probe (your model, fresh init, your optimizer)")
    tiny_subset_steps: int = knob(300, "full-batch steps the probe gets to memorize them")
    memorize_ratio: float = knob(
        10.0, "the probe counts only if the model has >= this many parameters per subset target")
    tiny_fit_fraction: float = knob(
        0.05, "the subset counts as fit when its loss < this fraction of its trivial loss")
    hessian: str = knob(
        "auto", "auto: critical-point analysis when the run has an optimization issue; "
        "always: after every run; never", one_of("auto", "always", "never"))
    hessian_iterations: int = knob(
        30, "Lanczos iterations (Hessian-vector products) for the extreme eigenvalues")
    hessian_max_examples: int = knob(
        512, "gradient and Hessian use at most this many training examples")
    hessian_every: int = knob(0, "> 0: also record the extreme eigenvalues every this many epochs")
    escape_saddle: bool = knob(
        False, "at a saddle, step along the negative-curvature eigenvector and report the loss")
    probe_budget: float = knob(
        1.0, "the probes stop iterating (L-BFGS, Adam, Lanczos, tiny-subset steps, gradient "
        "passes) once they have run this multiple of the run's own time; each iterative probe "
        "gets a share of what is left", POSITIVE)
    # --- where is an optimization issue stuck?
    small_gradient_gain: float = knob(
        1e-3, "the gradient is small when the best step along it, |g|^2 / (2 lambda_max), lowers "
        "the loss by less than this fraction of the trivial loss")
    small_step_ratio: float = knob(
        0.01, "SGD: lr / (1 - momentum) x curvature along the gradient below this: the learning "
        "rate is too small (a step ~1 would reach the valley floor)")
    negative_curvature: float = knob(
        1e-3, "lambda_min < -this * lambda_max is clearly negative curvature (float32 round-off "
        "in a Hessian-vector product is ~1e-6 of lambda_max)")
    window_fraction: float = knob(
        0.25, "the last this fraction of epochs (at least 3) is where the history is read")
    falling_rate: float = knob(
        0.01, "still falling: the training loss fell by more than this fraction per epoch")
    oscillation_fraction: float = knob(
        0.3, "oscillating: the training loss rose in more than this fraction of epochs")
    grad_spike_ratio: float = knob(
        10.0, "exploding: an epoch's gradient norm above this many times the median")
    vanishing_ratio: float = knob(
        0.01, "vanishing: first-layer gradient (per weight) below this times the last layer's")
    dead_relu_fraction: float = knob(
        0.5, "dead ReLUs: more than this fraction of ReLU units never active on training data")
    input_scale_ratio: float = knob(
        100.0, "badly scaled: feature standard deviations (or means) spread more than this")
    # --- overfitting and mismatch
    gap_standard_errors: float = knob(
        2.0, "a gap between two splits' losses counts only above this many standard errors of "
        "the difference (from the per-example losses: sampling noise is no gap)", NON_NEGATIVE)
    mismatch_ratio: float = knob(
        2.0, "a test loss above this many times the validation loss (and above it by more than "
        "reference_margin x the trivial val loss) is large: the model does much worse on the "
        "test split than on data from its own distribution", at_least(1))
    overtraining_fraction: float = knob(
        0.02, "early stopping would have saved when the final validation loss is above its "
        "minimum by more than this fraction of the trivial loss")


SCHEMAS = {
    "_schema_diagnose": DiagnoseConfig,
}
