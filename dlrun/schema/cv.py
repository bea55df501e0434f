"""Schema of the `cv` group: N-fold cross-validation over the train+val pool."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CVConfig:
    folds: int | None = None  # null: one ordinary run; N >= 2: train one model per fold
    stratified: bool = True  # classification: keep class proportions in every fold


SCHEMAS = {
    "_schema_cv": CVConfig,
}
