"""Each job's mini-batches, drawn from its own generator exactly as its solo run draws them.

A job's generator is seeded with its `trainer.seed` and draws one `randperm` per epoch on
the device, as dlrun.data.batches.shuffled_batches does, so step s of a stacked job
trains on the rows step s of its solo run trains on. Jobs may have their own data (a
seed draws its own splits, label noise and n_train their own training rows); datasets
of the same shapes are stacked, and one gather per step builds the folded (K * B, ...)
batch. Jobs that share a dataset share one copy.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from dlrun.data import Dataset


class JobData:
    """The distinct datasets of a stack's jobs, stacked per split, and which job reads which."""

    def __init__(self, datasets: list[Dataset], seeds: list[int], batch_size: int | None,
                 drop_last: bool):
        distinct: dict[int, int] = {}  # id of a dataset -> its place in self.sets
        self.sets: list[Dataset] = []
        for data in datasets:
            if id(data) not in distinct:
                distinct[id(data)] = len(self.sets)
                self.sets.append(data)
        shapes = {tuple(tuple(t.shape) for t in (d.x_train, d.y_train, d.x_val, d.x_test)) for d in self.sets}
        if len(shapes) > 1:
            raise ValueError(f"the jobs' datasets differ in shape: {sorted(shapes)}")
        device = self.sets[0].x_train.device
        self.index = torch.tensor([distinct[id(d)] for d in datasets], device=device)
        self.splits = {split: tuple(torch.stack([getattr(d, f"{xy}_{split}") for d in self.sets])
                                    for xy in ("x", "y"))
                       for split in ("train", "val", "test")}
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.batch_size, self.drop_last = batch_size, drop_last

    @property
    def train_rows(self) -> int:
        return self.splits["train"][0].shape[1]

    def rows(self, split: str, start: int = 0, stop: int | None = None):
        """(x, y) of rows start:stop of `split` for every job: (K, n, ...)."""
        x, y = self.splits[split]
        return x[self.index, start:stop], y[self.index, start:stop]

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of folded (K * B, ...) batches: job k's rows in block k."""
        n, batch = self.train_rows, self.batch_size
        if batch is None or batch >= n:  # full batch: no permutation drawn, as in a solo run
            x, y = self.rows("train")
            yield _fold(x), _fold(y)
            return
        device = self.index.device
        order = torch.stack([torch.randperm(n, device=device, generator=g) for g in self.generators])
        if self.drop_last:
            order = order[:, : n - n % batch]
        # rows of the datasets laid end to end: one index_select per step builds the folded batch
        # (a third of the time of indexing with a (job, row) pair of index tensors, measured)
        x, y = (_fold(t) for t in self.splits["train"])
        order = order + (self.index * n).unsqueeze(1)
        for start in range(0, order.shape[1], batch):
            rows = order[:, start : start + batch].reshape(-1)
            yield x.index_select(0, rows), y.index_select(0, rows)

    def keep(self, index: list[int]) -> None:
        self.index = self.index[torch.tensor(index, dtype=torch.long, device=self.index.device)]
        self.generators = [self.generators[i] for i in index]


def _fold(t: torch.Tensor) -> torch.Tensor:
    """(K, n, ...) -> (K * n, ...), job-major."""
    return t.reshape(-1, *t.shape[2:])
