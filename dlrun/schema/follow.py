"""Schema of the `follow` group: how far `dlrun -m follow=on ...` walks the map."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import POSITIVE, at_least, knob


@dataclass
class FollowConfig:
    width: int = knob(3, "remedies of a diagnosis launched together in one round (its first N)",
                      at_least(1))
    rounds: int = knob(4, "rounds of remedies after your own run, at most", at_least(1))
    budget: float | None = knob(
        None, "null: no limit; else no new round starts once the walk has run this many seconds",
        POSITIVE)


SCHEMAS = {
    "_schema_follow": FollowConfig,
}
