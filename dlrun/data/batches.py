"""Mini-batches drawn on the device: one randperm per epoch, slices, no host round trips."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def shuffled_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int | None, generator: torch.Generator,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches of a fresh permutation; `batch_size=None` yields the full batch.

    `drop_last` skips a final partial batch, so every step sees the same shapes (what
    torch.compile and CUDA graphs want).
    """
    n = len(x)
    if batch_size is None or batch_size >= n:
        yield x, y
        return
    order = torch.randperm(n, device=x.device, generator=generator)
    end = n - n % batch_size if drop_last else n
    for start in range(0, end, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]


def chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """In-order slices for evaluation."""
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]
