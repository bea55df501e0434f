"""During training: warnings as soon as an epoch shows trouble, and (diagnose.hessian_every)
the Hessian's extreme eigenvalues every N epochs. Works on the rows the loop already
produced, so it adds no host sync to the steps.
"""

from __future__ import annotations

import statistics

from dlrun.diagnose import hessian, probes
from dlrun.records import EpochRow
from dlrun.records.rows import finite


class EpochMonitor:
    def __init__(self, th, data, loss, seed: int = 0):
        self.th, self.data, self.loss, self.seed = th, data, loss, seed
        self.norms: list[float] = []
        self.warned: set[str] = set()

    def epoch(self, row: EpochRow, model) -> list[str]:
        """New warnings for this epoch (each kind once); adds hessian_* to `row` when due."""
        if not self.th.enabled:
            return []
        warnings = []
        if not all(finite(row.loss(split)) for split in ("train", "val")):
            warnings.append(
                self._once(
                    "nonfinite",
                    f"epoch {row.epoch}: the loss is not finite; "
                    "the diagnosis will say why (optim.lr too large?)",
                )
            )
        norm = row.grad_norm
        if finite(norm):
            if len(self.norms) >= 3 and norm > self.th.grad_spike_ratio * statistics.median(
                self.norms
            ):
                warnings.append(
                    self._once(
                        "spike",
                        f"epoch {row.epoch}: gradient norm {norm:.3g} is "
                        f"over {self.th.grad_spike_ratio:g}x the median so far: "
                        "exploding gradients?",
                    )
                )
            self.norms.append(norm)
        every = self.th.hessian_every
        if every and row.epoch % every == 0 and finite(row.loss("train")):
            row.hessian_max, row.hessian_min = self.curvature(model)
        return [w for w in warnings if w]

    def _once(self, kind: str, text: str) -> str | None:
        if kind in self.warned:
            return None
        self.warned.add(kind)
        return text

    def curvature(self, model) -> tuple[float, float]:
        """hessian_max / hessian_min at the current weights (on a training sample, eval mode)."""
        x, y = probes.sample(
            self.data.x_train, self.data.y_train, self.th.hessian_max_examples, self.seed
        )
        was_training = model.training
        model.eval()
        try:
            f = hessian.loss_of_params(model, self.loss, x, y)
            cp, _, _ = hessian.critical_point(
                f, dict(model.named_parameters()), self.th.hessian_iterations, self.seed
            )
        finally:
            model.train(was_training)
        return cp.lambda_max, cp.lambda_min
