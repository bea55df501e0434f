"""Schemas of the token datasets in the `data` group: seq2seq toy tasks and `data=text`."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.data import DataConfig, GeneratedConfig, length
from dlrun.schema.knobs import NON_NEGATIVE, POSITIVE, at_least, between, knob

UNSUPPORTED = "not supported"


@dataclass
class TokenTaskConfig(GeneratedConfig):
    """Seq2seq toy tasks: label noise and test shifts do not apply."""

    n: int = knob(5000, "examples before the splits (duplicates dropped)")
    label_noise: float = knob(0.0, UNSUPPORTED)
    test_shift: str | None = knob(None, UNSUPPORTED)


@dataclass
class SymbolTaskConfig(TokenTaskConfig):
    length: int = length(8, "symbols per source")
    symbols: int = knob(10, "distinct symbols, 2-10 (the digits 0..symbols-1)", between(2, 10))


@dataclass
class CopyConfig(SymbolTaskConfig):
    _target_: str = "dlrun.data.seq2seq.copy"


@dataclass
class ReverseConfig(SymbolTaskConfig):
    _target_: str = "dlrun.data.seq2seq.reverse"


@dataclass
class SortConfig(SymbolTaskConfig):
    _target_: str = "dlrun.data.seq2seq.sort"


@dataclass
class AddConfig(TokenTaskConfig):
    _target_: str = "dlrun.data.seq2seq.add"
    n: int = knob(5000, "distinct operand pairs (all of them if there are fewer)")
    digits: int = knob(3, "digits per operand (zero-padded); the sum gets one more", between(1, 9))


@dataclass
class TextConfig(DataConfig):
    _target_: str = "dlrun.data.text.text"
    n_train: int | None = knob(None, "keep this many training windows; null: all of them")
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    label_noise: float = knob(0.0, UNSUPPORTED)
    test_shift: str | None = knob(None, UNSUPPORTED)
    path: str | None = knob(None, "a UTF-8 text file")
    block: int = knob(64, "characters of context per training window", at_least(1, " characters"))
    stride: int | None = knob(None, "spacing of training windows; null: block (no overlap)",
                              at_least(1, ", or null for the block length"))
    sample_chars: int = knob(300, "characters generated after training (0: none)", NON_NEGATIVE)
    temperature: float = knob(
        0.8, "sampling temperature of that sample (lower: safer, more repetitive)", POSITIVE)


SCHEMAS = {
    "_schema_data_copy": CopyConfig,
    "_schema_data_reverse": ReverseConfig,
    "_schema_data_sort": SortConfig,
    "_schema_data_add": AddConfig,
    "_schema_data_text": TextConfig,
}
