"""Losses, the `_target_`s of the `loss` group: each knows which tasks it fits.

A loss is built with the dataset's `task` and the model's `outputs` kind. Models emit
raw scores (`logits`) except `model=logistic`, whose sigmoid/softmax head emits
`probabilities`: `scores` turns those back into log-odds / log-probabilities (clamped
away from log 0), so BCE and cross-entropy on them are the textbook -log p (for
softmax outputs, cross-entropy of log-probabilities *is* NLL, since log_softmax leaves
log-probabilities unchanged). Per-step labels (N, T) are averaged over steps; label
-100 (`IGNORE`) marks steps that carry no target.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dlrun.errors import UserError

IGNORE = -100


class Loss:
    """Mean of `per_example` over a batch; `per_example` sums make a split's loss in evaluation."""

    name = ""
    tasks: tuple[str, ...] = ()

    def __init__(self, *, task: str, outputs: str = "logits"):
        if task not in self.tasks:
            fitting = [cls.name for cls in LOSSES if task in cls.tasks]
            raise UserError(
                f"loss={self.name} does not fit this dataset's {task} task; use loss=auto"
                f"{' or ' + ', '.join('loss=' + n for n in fitting) if fitting else ''}."
            )
        if outputs == "probabilities" and task == "regression":
            raise UserError(
                "model=logistic outputs probabilities, which fit classification only; use "
                "model=linear for regression."
            )
        self.task, self.outputs = task, outputs

    def scores(self, out: torch.Tensor) -> torch.Tensor:
        """Raw scores: logits as they are; probabilities back to log-odds / log-probabilities."""
        if self.outputs != "probabilities":
            return out
        if self.task == "binary":
            return torch.logit(out, eps=1e-7)
        return out.clamp_min(torch.finfo(out.dtype).tiny).log()

    def per_example(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_example(out, y).mean()

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Class labels (classification) or the outputs themselves (regression)."""
        return out


class _Regression(Loss):
    tasks = ("regression",)

    def elementwise(self, out, y):
        raise NotImplementedError

    def per_example(self, out, y):
        return self.elementwise(out, y).flatten(1).mean(dim=1)


class MSE(_Regression):
    """Mean squared error: the Gaussian likelihood's loss, sensitive to outliers."""

    name = "mse"

    def elementwise(self, out, y):
        return F.mse_loss(out, y, reduction="none")


class MAE(_Regression):
    """Mean absolute error: robust to outliers, constant-size gradients."""

    name = "mae"

    def elementwise(self, out, y):
        return F.l1_loss(out, y, reduction="none")


class Huber(_Regression):
    """Squared below `delta`, linear above: MSE near the target, MAE for outliers."""

    name = "huber"

    def __init__(self, *, task: str, outputs: str = "logits", delta: float = 1.0):
        super().__init__(task=task, outputs=outputs)
        self.delta = delta

    def elementwise(self, out, y):
        return F.huber_loss(out, y, reduction="none", delta=self.delta)


class BCE(Loss):
    """Binary cross-entropy on one logit per example (or per step)."""

    name = "bce"
    tasks = ("binary",)

    def per_example(self, out, y):
        logit = self.scores(out).squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logit, y.to(logit.dtype), reduction="none")
        return loss.flatten(1).mean(dim=1) if loss.ndim > 1 else loss

    def predict(self, out):
        return (self.scores(out).squeeze(-1) > 0).long()


class CrossEntropy(Loss):
    """Softmax cross-entropy over classes, per example or averaged over labelled steps.

    `label_smoothing` = e trains towards (1 - e) on the true class and e / C spread over
    all C classes, so the loss of a perfectly confident right answer is no longer 0.
    """

    name = "cross_entropy"
    tasks = ("multiclass", "seq2seq")

    def __init__(self, *, task: str, outputs: str = "logits", label_smoothing: float = 0.0):
        super().__init__(task=task, outputs=outputs)
        self.label_smoothing = label_smoothing

    def __call__(self, out, y):
        if y.ndim == 1:  # one label per example: torch's own mean, a single kernel
            return F.cross_entropy(self.scores(out), y, label_smoothing=self.label_smoothing)
        return super().__call__(out, y)

    def per_example(self, out, y):
        scores = self.scores(out)
        loss = F.cross_entropy(
            scores.reshape(-1, scores.shape[-1]),
            y.reshape(-1),
            reduction="none",
            label_smoothing=self.label_smoothing,
            ignore_index=IGNORE,
        ).view(y.shape)
        if y.ndim == 1:
            return loss
        labelled = (y != IGNORE).sum(dim=1).clamp_min(1)
        return loss.sum(dim=1) / labelled

    def predict(self, out):
        return out.argmax(dim=-1)


LOSSES = (MSE, MAE, Huber, BCE, CrossEntropy)
DEFAULTS = {"regression": MSE, "binary": BCE, "multiclass": CrossEntropy, "seq2seq": CrossEntropy}


def auto(*, task: str, outputs: str = "logits") -> Loss:
    """The task's own loss: MSE for regression, BCE with logits for binary, cross-entropy otherwise."""
    return DEFAULTS[task](task=task, outputs=outputs)
