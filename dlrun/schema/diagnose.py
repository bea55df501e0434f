"""Schema of the `diagnose` group: the optimization map's probes and thresholds.

What each threshold means is said once, in conf/diagnose/default.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DiagnoseConfig:
    enabled: bool = True
    # what "large" means
    target_train_loss: float | None = None
    large_loss_fraction: float = 0.2
    reference_margin: float = 0.1
    # probes run after training
    reference_hidden: int = 64
    reference_steps: int = 30
    reference_max_examples: int = 4096
    own_optimum_steps: int = 50
    tiny_subset_size: int = 32
    tiny_subset_steps: int = 300
    memorize_ratio: float = 10.0
    tiny_fit_fraction: float = 0.05
    hessian: str = "auto"  # auto | always | never
    hessian_iterations: int = 30
    hessian_max_examples: int = 512
    hessian_every: int = 0
    escape_saddle: bool = False
    probe_budget: float = 1.0
    # where an optimization issue is stuck
    small_gradient_gain: float = 1e-3
    small_step_ratio: float = 0.01
    negative_curvature: float = 1e-3
    window_fraction: float = 0.25
    falling_rate: float = 0.01
    oscillation_fraction: float = 0.3
    grad_spike_ratio: float = 10.0
    vanishing_ratio: float = 0.01
    dead_relu_fraction: float = 0.5
    input_scale_ratio: float = 100.0
    # overfitting and mismatch
    gap_standard_errors: float = 2.0
    mismatch_ratio: float = 2.0
    overtraining_fraction: float = 0.02


SCHEMAS = {
    "_schema_diagnose": DiagnoseConfig,
}
