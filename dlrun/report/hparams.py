"""TensorBoard HParams: every run records its hyperparameters, so the HPARAMS tab compares runs.

Only the session-start summary is written, into the run's `tb/` directory beside its
scalars. TensorBoard then infers the experiment from all the sessions under `--logdir`
(hyperparameters: the union over runs) and takes each metric as the last value of a
scalar curve of the session: `loss`, `metric/<name>` and `optim/...` in the groups
`train`, `val`, `test` (tb/train, tb/val, tb/test; see dlrun.report.tensorboard for why the
tags sort the losses first). TensorBoard lists the hyperparameters whose values differ
between sessions first. So `tensorboard --logdir outputs/multirun/<date>/<time>` compares a
sweep's jobs, swept knobs and losses in the default view, with no metric logged twice.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from dlrun.overrides import parse_all
from dlrun.schema.knobs import common_keys

_ABSENT = object()


def _value(value):
    """A value TensorBoard can hold: a number, a bool or a string (lists and null as text).

    Integers are written as text: TensorBoard prints every number with five significant
    digits (a hidden size of 128 reads `128.00`), and a width or a batch size is a choice
    among a few values anyway."""
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (bool, float, str)):
        return value
    return str(value) if value is not None else "null"


def hparams_of(cfg: DictConfig) -> dict:
    """The config groups chosen, the common knobs, and every key the command overrode.

    The common knobs are the ones users sweep most (DESIGN.md section 3): those whose schema
    field says `common=True`, logged for every run whose config has them."""
    values: dict = {}
    overrides: list[str] = []
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        for group, choice in hydra.runtime.choices.items():
            if not group.startswith("hydra") and choice is not None:
                values[group] = _value(choice)
        overrides = list(hydra.overrides.task)
    keys = common_keys(cfg) + [o.key for o in parse_all(overrides, strict=False) if "/" not in o.key]
    for key in keys:
        if key in values:  # a group choice (optim=sgd) is already there
            continue
        node = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if node is not _ABSENT:
            values[key] = _value(node)
    return values


def log_hparams(writer: SummaryWriter, cfg: DictConfig) -> None:
    """Write the run's session-start summary (its hyperparameters) through `writer`."""
    _, session_start, _ = hparams(hparams_of(cfg), {})
    writer.file_writer.add_summary(session_start)
    writer.flush()
