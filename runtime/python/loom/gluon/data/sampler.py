"""Samplers: the order a DataLoader visits a dataset in."""
from __future__ import annotations

import numpy as np


class Sampler:
    def __iter__(self):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, length: int):
        self._length = length

    def __iter__(self):
        return iter(range(self._length))

    def __len__(self) -> int:
        return self._length


class RandomSampler(Sampler):
    """A fresh permutation each epoch, from NumPy's generator seeded by lm.random.seed."""

    def __init__(self, length: int):
        self._length = length
        self._epoch = 0

    def __iter__(self):
        from loom import random
        rng = np.random.default_rng([random.get_state()[0] & 0xFFFFFFFF, self._epoch])
        self._epoch += 1
        return iter(rng.permutation(self._length).tolist())

    def __len__(self) -> int:
        return self._length


class SplitSampler(Sampler):
    """Part `part_index` of `num_parts` disjoint parts of a dataset: the
    shard of one worker in data-parallel training (kv.rank of
    kv.num_workers). With shuffle, the part's order changes every epoch,
    and the parts stay disjoint."""

    def __init__(self, length: int, num_parts: int = 1, part_index: int = 0, shuffle: bool = True):
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise ValueError(f"SplitSampler: part_index {part_index} is not in [0, {num_parts})")
        self._indices = np.arange(part_index, length, num_parts)
        self._shuffle = shuffle
        self._epoch = 0

    def __iter__(self):
        if not self._shuffle:
            return iter(self._indices.tolist())
        from loom import random
        rng = np.random.default_rng([random.get_state()[0] & 0xFFFFFFFF, self._epoch, len(self._indices)])
        self._epoch += 1
        return iter(rng.permutation(self._indices).tolist())

    def __len__(self) -> int:
        return len(self._indices)


class BatchSampler(Sampler):
    """Groups another sampler's indices into batches; last_batch is 'keep'
    (a smaller last batch), 'discard' or 'rollover' (its samples start the next epoch)."""

    def __init__(self, sampler: Sampler, batch_size: int, last_batch: str = "keep"):
        if last_batch not in ("keep", "discard", "rollover"):
            raise ValueError(f"last_batch must be 'keep', 'discard' or 'rollover', got {last_batch!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._sampler, self._batch, self._last = sampler, batch_size, last_batch
        self._carry: list = []

    def __iter__(self):
        batch, self._carry = self._carry, []
        for i in self._sampler:
            batch.append(i)
            if len(batch) == self._batch:
                yield batch
                batch = []
        if batch:
            if self._last == "keep":
                yield batch
            elif self._last == "rollover":
                self._carry = batch

    def __len__(self) -> int:
        n = len(self._sampler) + len(self._carry)
        return (n + self._batch - 1) // self._batch if self._last == "keep" else n // self._batch
