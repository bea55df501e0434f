"""Schema of the `cv` group: N-fold cross-validation over the train+val pool."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.knobs import at_least, knob


@dataclass
class CVConfig:
    folds: int | None = knob(None, "null: one ordinary run; N >= 2: train one model per fold",
                             at_least(2, ", or null for one ordinary run"))
    stratified: bool = knob(True, "classification: every fold keeps the class proportions")


SCHEMAS = {
    "_schema_cv": CVConfig,
}
