"""Token datasets for next-token prediction, and `data=text`: characters of any text file.

Inputs are token ids x (N, T) int64 and targets the next token at every step, y (N, T);
a target of -100 marks a step that only conditions the model (a seq2seq source). Models
that take `vocab_size` embed the ids; `causal` tells the model builder that a model may
not look ahead (the target of step t is the input of step t + 1).

`data=text` cuts a file into windows of `block` + 1 characters: the first 1 - val - test
of the file trains, then a val stretch, then a test stretch, so no window straddles two
splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlrun.data.dataset import Dataset
from dlrun.errors import UserError

IGNORE = -100  # the target of a step that has none (matches dlrun.train.losses.IGNORE)


@dataclass
class TokenDataset(Dataset):
    """A Dataset of token ids with the vocabulary that decodes them."""

    vocab: str = ""  # token id -> character
    source_length: int | None = None  # seq2seq: leading steps that only condition (targets -100)
    causal: bool = True
    sample_chars: int = 0  # text: characters to generate after training
    temperature: float = 1.0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def out_features(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        return torch.tensor([index[c] for c in text if c in index], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids if 0 <= i < len(self.vocab))


def refuse_unsupported(name: str, label_noise: float, test_shift: str | None,
                       train_shift_fraction: float = 0.0) -> None:
    if label_noise:
        raise UserError(
            f"data.label_noise={label_noise} is not supported for data={name}; leave it at 0."
        )
    if test_shift is not None or train_shift_fraction:
        knob = (f"data.test_shift={test_shift}" if test_shift is not None
                else f"data.train_shift_fraction={train_shift_fraction}")
        raise UserError(f"{knob} is not supported for data={name}; leave it at its default.")


def subsample(x: np.ndarray, y: np.ndarray, n_train: int | None, seed: int, name: str):
    if n_train is None:
        return x, y
    if n_train > len(x):
        raise UserError(
            f"data.n_train={n_train} is larger than the {len(x)} training examples {name} has; "
            f"use data.n_train<={len(x)} or null."
        )
    keep = np.random.default_rng(seed).permutation(len(x))[:n_train]
    return x[keep], y[keep]


def _windows(ids: np.ndarray, block: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    starts = range(0, len(ids) - block, stride)
    chunks = (
        np.stack([ids[s : s + block + 1] for s in starts])
        if len(starts)
        else np.zeros((0, block + 1), np.int64)
    )
    return chunks[:, :-1], chunks[:, 1:]


def text(
    *,
    seed: int,
    path: str | None = None,
    block: int = 64,
    stride: int | None = None,
    sample_chars: int = 300,
    temperature: float = 0.8,
    n_train: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    label_noise: float = 0.0,
    test_shift: str | None = None,
    train_shift_fraction: float = 0.0,
) -> TokenDataset:
    """Next-character prediction on a UTF-8 text file; `stride` (default `block`) spaces training windows."""
    refuse_unsupported("text", label_noise, test_shift, train_shift_fraction)
    if path is None:
        raise UserError(
            "data=text needs a file: pass data.path=<a UTF-8 text file>, e.g. data.path=README.md."
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"data.path={path}: no such file; pass a UTF-8 text file, e.g. data.path=README.md."
        )
    try:
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"data.path={path} is not UTF-8 text; pass a plain text file.") from None
    vocab = "".join(sorted(set(content)))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in content], dtype=np.int64)
    n_test, n_val = int(len(ids) * test_fraction), int(len(ids) * val_fraction)
    n_fit = len(ids) - n_val - n_test
    parts = {"train": ids[:n_fit], "val": ids[n_fit : n_fit + n_val], "test": ids[n_fit + n_val :]}
    splits = {}
    for split, part in parts.items():
        x, y = _windows(part, block, stride or block if split == "train" else block)
        if len(x) == 0:
            raise UserError(
                f"data.path={path}: its {split} part ({len(part)} characters) is shorter than "
                f"data.block={block} + 1; use a smaller data.block or a longer file."
            )
        splits[split] = (x, y)
    splits["train"] = subsample(*splits["train"], n_train, seed, "text")
    tensors = {
        f"{v}_{s}": torch.from_numpy(np.ascontiguousarray(a))
        for s, xy in splits.items()
        for v, a in zip(("x", "y"), xy)
    }
    return TokenDataset(
        name="text",
        task="multiclass",
        n_classes=len(vocab),
        vocab=vocab,
        sample_chars=sample_chars,
        temperature=temperature,
        **tensors,
    )
