"""The checks Hydra's type checks cannot do: ranges, and paths that must exist.

Types are checked by Hydra against the schemas in `dlrun.schema`; the ranges those
schemas state (lr > 0, dropout < 1, ...) by `validate`, which raises a one-line
`UserError`. No torch here.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig

from dlrun.errors import UserError
from dlrun.schema.knobs import described
from dlrun.schema.run import RunConfig


def validate(cfg: DictConfig) -> None:
    """Raise a one-line UserError for the first knob outside the range its schema states.

    A value taken from another key (model.dropout from reg.dropout.p) is checked last, so
    the error names the key the user set.
    """
    check_ranges(cfg, RunConfig)
    check_resume_dir(cfg.trainer.resume)


def check_ranges(cfg: DictConfig, root: type | None = None, prefix: str = "") -> None:
    """The range check alone, for any node the schemas describe (`prefix`: the node's key)."""
    settings = sorted(described(cfg, root=root, prefix=prefix), key=lambda s: s.interpolated)
    for s in settings:
        rule = s.knob.rule
        if rule is not None and s.value is not None and not rule.ok(s.value):
            # null is absent, or a knob's "off"/"auto"
            raise UserError(f"{s.key}={s.value} is out of range: it {rule.text}.")


def check_resume_dir(resume: str | None) -> None:
    """`trainer.resume` must name an existing run directory (the CLI checks it before Hydra
    creates the run directory; `validate` checks it for in-process runs)."""
    if resume is not None and not os.path.isdir(resume):
        raise UserError(
            f"trainer.resume={resume}: no such run directory; "
            "pass the directory of an earlier run, e.g. trainer.resume=outputs/runs/<date>/<time>."
        )
