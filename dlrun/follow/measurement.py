"""The knobs that change what is measured, never the model: the walk never follows them.

Removing a test shift, re-splitting or shrinking the held-out splits, changing the loss the
quantities are measured in, the diagnosis's own thresholds and probes, cross-validation or
the dataset itself would all move the numbers the walk compares without making the model
any better, so a remedy that sets one of them is recorded as skipped and never launched.
This is the one place that list lives.
"""

from __future__ import annotations

from collections.abc import Iterable

from dlrun import overrides as ov

# a key here stands for itself and everything inside it (`diagnose` covers diagnose.*)
MEASUREMENT_KNOBS: tuple[str, ...] = (
    "data.test_shift",  # the test split's distribution
    "data.test_fraction",  # the size of the held-out splits
    "data.val_fraction",
    "loss",  # the yardstick every quantity is measured with
    "diagnose",  # what counts as large, and which probes run
    "cv",  # how validation is done
    "mode",  # train | lr_find: what the job does
)
# a group whose *choice* changes the task itself (its knobs inside may be remedies:
# data.n_train, data.train_shift_fraction)
MEASUREMENT_GROUPS: tuple[str, ...] = ("data", "experiment")


def measured_keys(changes: Iterable[str]) -> list[str]:
    """The keys among `changes` (overrides) that change the measurement: [] when none does."""
    found = []
    for override in ov.parse_all(changes, strict=False):
        if override.key in MEASUREMENT_GROUPS or any(override.under(k) for k in MEASUREMENT_KNOBS):
            found.append(override.key)
    return found
