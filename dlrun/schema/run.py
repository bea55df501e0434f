"""The root config's own knobs (`mode`, `checkpoint`), beside the config groups.

The root stays an untyped node: a structured root would have to name every group and
would refuse `+key=value` at the top level. So conf/config.yaml takes these defaults
from `_schema_run`, stored as plain values, and `validate` checks the root against
RunConfig.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import OmegaConf

from dlrun.schema.knobs import knob, one_of


@dataclass
class RunConfig:
    mode: str = knob("train", "train | lr_find (the learning-rate range test) | eval (re-test "
                     "the run trainer.resume names)",
                     one_of("train", "lr_find", "eval", text="must be train, lr_find or eval"))
    checkpoint: str = knob("best", "mode=eval: the weights to test, best (lowest val loss) or last",
                           one_of("best", "last", text="must be best or last"))


SCHEMAS = {
    "_schema_run": OmegaConf.to_container(OmegaConf.structured(RunConfig)),
}
