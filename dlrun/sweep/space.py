"""A search space written in Hydra's sweep syntax, as Optuna distributions, and back.

The syntax is the one users know from hydra-optuna-sweeper: `interval(a, b)` (floats;
`int(interval(a, b))` for integers), `tag(log, interval(a, b))` (log scale), `choice(x, y)`
or `x,y` (categorical), `range(a, b[, step])` (categorical over the range). Keys come from
`hydra.sweeper.params` and from sweep overrides on the command line; a plain `key=value` on
the command line fixes that key for every trial (it leaves the space). Overrides are read
by dlrun's one override parser (Hydra's grammar). No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from dlrun.errors import UserError
from dlrun.overrides import Override, format, format_value, parse, parse_all


@dataclass
class Space:
    """The distributions to sample, and the overrides every trial shares."""

    distributions: dict[str, BaseDistribution]
    fixed: list[str]

    def overrides(self, params: Mapping[str, object]) -> list[str]:
        """A trial's overrides: the shared ones, then one `key=value` per sampled parameter."""
        return [*self.fixed, *(_override(key, value) for key, value in params.items())]


def _override(key: str, value: object) -> str:
    if isinstance(value, str) and value.startswith(_ENCODED):  # a list or dict choice
        return f"{key}={value[len(_ENCODED):]}"
    return format(key, value)


_ENCODED = "override:"  # marks a choice stored as the text of its value


def _categorical(values: Sequence) -> CategoricalDistribution:
    # Optuna stores str/int/float/bool/None; anything else (a list) travels as its override text
    primitive = (str, int, float, bool, type(None))
    return CategoricalDistribution([v if isinstance(v, primitive) else _ENCODED + format_value(v)
                                    for v in values])


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution a sweep override describes."""
    sweep = override.value
    if isinstance(sweep, ChoiceSweep):
        return _categorical(sweep.list)
    if isinstance(sweep, RangeSweep):
        step = sweep.step or 1
        values, at = [], sweep.start
        while (at < sweep.stop) if step > 0 else (at > sweep.stop):
            values.append(at)
            at += step
        return _categorical(values)
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    raise UserError(f"{override.text}: Optuna cannot search this; use interval(a, b), "
                    "tag(log, interval(a, b)), choice(x, y) or range(a, b).")


def _param(key: str, value: object) -> Override:
    """One entry of `hydra.sweeper.params` as the override it stands for."""
    return parse(f"{key}={value}" if isinstance(value, str) else format(str(key), value))


def build_space(params: Mapping[str, str] | None, arguments: Sequence[str]) -> Space:
    """The space from `hydra.sweeper.params` and the command line's sweep overrides."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}  # key -> override; the command line's replaces the preset's
    for parsed in [*(_param(k, v) for k, v in (params or {}).items()), *parse_all(arguments)]:
        if parsed.is_sweep:
            space[parsed.key] = distribution(parsed)
            fixed.pop(parsed.key, None)
        else:
            space.pop(parsed.key, None)  # a plain value fixes the key for every trial
            fixed[parsed.key] = parsed.text
    if not space:
        raise UserError("the search has nothing to search: set hydra.sweeper.params or pass a "
                        "sweep override such as 'optim.lr=tag(log, interval(1e-4, 1e-1))'.")
    return Space(space, list(fixed.values()))
