"""A knob in one place: the schema field states its type and default, its metadata the
range it must lie in and what it means in one line.

`validate` (dlrun.config) checks the ranges, the TensorBoard HParams view logs the knobs
marked `common`, and a test holds the README's knob tables to the defaults here. A
subclass that only changes a default (`lr: float = 0.1` in SGDConfig) keeps the range and
meaning its base class states. No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

KNOB = "dlrun_knob"  # the key of a field's metadata that holds its Knob


@dataclass(frozen=True)
class Rule:
    """A range: `ok(value)`, and what a value must be, completing "it ..." in the error."""

    ok: Callable[[Any], bool]
    text: str


def at_least(low: float, then: str = "") -> Rule:
    return Rule(lambda v: v >= low, f"must be >= {low}{then}")


def above(low: float, then: str = "") -> Rule:
    return Rule(lambda v: v > low, f"must be > {low}{then}")


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    def ok(v: float) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    text = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return Rule(ok, f"must lie in {text}")


def one_of(*choices: str, text: str | None = None) -> Rule:
    return Rule(lambda v: v in choices, text or f"must be one of {', '.join(choices)}")


FRACTION = between(0, 1, high_open=True)  # [0, 1): dropout, label noise, momentum, ...
OPEN_FRACTION = between(0, 1, low_open=True, high_open=True)  # (0, 1): a share of a split
POSITIVE = above(0)
NON_NEGATIVE = at_least(0)


@dataclass(frozen=True)
class Knob:
    """What a field's metadata says about it; None: what the base class's field says."""

    meaning: str | None = None
    rule: Rule | None = None
    common: bool | None = None  # logged for every run (TensorBoard HParams)


def knob(default: Any, meaning: str | None = None, rule: Rule | None = None, *,
         common: bool | None = None) -> Any:
    """A schema field: its default, its one-line meaning, its range and whether it is common."""
    metadata = {KNOB: Knob(meaning, rule, common)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def spec(schema: type, name: str) -> Knob:
    """The knob `name` of `schema`, each part from the nearest class along the MRO that states it."""
    found: dict[str, Any] = {}
    for cls in schema.__mro__:
        field = getattr(cls, "__dataclass_fields__", {}).get(name)
        stated = field.metadata.get(KNOB) if field is not None else None
        for part in ("meaning", "rule", "common"):
            if stated is not None and part not in found and getattr(stated, part) is not None:
                found[part] = getattr(stated, part)
    return Knob(**found)


def fields(schema: type) -> list[dataclasses.Field]:
    """The knobs of a schema: its fields, without Hydra's `_target_`/`_partial_`."""
    return [f for f in dataclasses.fields(schema) if not f.name.startswith("_")]


def default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@dataclass(frozen=True)
class Setting:
    """A knob as one composed config sets it."""

    key: str  # the full key: "optim.lr", "reg.l2.strength"
    value: Any
    knob: Knob
    interpolated: bool  # the value comes from another key (model.dropout: ${...reg.dropout.p})


def described(cfg: DictConfig, root: type | None = None, prefix: str = "") -> Iterator[Setting]:
    """Every knob of the composed config that a schema describes, in the config's order.

    Each config group's node remembers the schema it was composed from; the root has none
    (see dlrun.schema.run), so its own schema is passed as `root`.
    """
    schema = OmegaConf.get_type(cfg)
    schema = schema if dataclasses.is_dataclass(schema) else root
    names = [f.name for f in fields(schema)] if schema is not None else []
    for name in names:
        if name in cfg and not OmegaConf.is_missing(cfg, name):
            yield Setting(prefix + name, cfg[name], spec(schema, name),
                          OmegaConf.is_interpolation(cfg, name))
    for name in cfg:
        if name not in names and not OmegaConf.is_missing(cfg, name):
            child = cfg[name]
            if isinstance(child, DictConfig):
                yield from described(child, prefix=f"{prefix}{name}.")


def common_keys(cfg: DictConfig) -> list[str]:
    """The knobs of this config that every run logs (`common=True` in its schema)."""
    return [s.key for s in described(cfg) if s.knob.common]
