"""Schemas of the token datasets in the `data` group: seq2seq toy tasks and `data=text`."""

from __future__ import annotations

from dataclasses import dataclass

from dlrun.schema.data import DataConfig


@dataclass
class SymbolTaskConfig(DataConfig):
    n: int = 5000  # examples before the splits (duplicates dropped)
    length: int = 8  # symbols per source
    symbols: int = 10  # distinct symbols, 2-10 (the digits 0..symbols-1)


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
class AddConfig(DataConfig):
    _target_: str = "dlrun.data.seq2seq.add"
    n: int = 5000
    digits: int = 3  # digits per operand (zero-padded); the sum gets one more


@dataclass
class TextConfig(DataConfig):
    _target_: str = "dlrun.data.text.text"
    path: str | None = None  # a UTF-8 text file
    block: int = 64  # characters of context per training window
    stride: int | None = None  # spacing of training windows; null: block (no overlap)
    sample_chars: int = 300  # characters generated after training (0: none)
    temperature: float = 0.8  # sampling temperature of that sample
    val_fraction: float = 0.1
    test_fraction: float = 0.1


SCHEMAS = {
    "_schema_data_copy": CopyConfig,
    "_schema_data_reverse": ReverseConfig,
    "_schema_data_sort": SortConfig,
    "_schema_data_add": AddConfig,
    "_schema_data_text": TextConfig,
}
