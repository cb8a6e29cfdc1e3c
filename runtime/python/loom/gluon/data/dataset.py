"""Datasets: indexable collections of samples (MXNet Gluon's names)."""
from __future__ import annotations


class Dataset:
    def __getitem__(self, idx):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def transform(self, fn, lazy: bool = True) -> "Dataset":
        """A dataset whose samples are fn(*sample)."""
        return _Transformed(self, fn, first_only=False)

    def transform_first(self, fn, lazy: bool = True) -> "Dataset":
        """A dataset whose samples have fn applied to their first element (the data, not the label)."""
        return _Transformed(self, fn, first_only=True)


class _Transformed(Dataset):
    def __init__(self, base: Dataset, fn, first_only: bool):
        self._base, self._fn, self._first = base, fn, first_only

    def __len__(self) -> int:
        return len(self._base)

    def __getitem__(self, idx):
        item = self._base[idx]
        if self._first:
            return (self._fn(item[0]),) + tuple(item[1:]) if isinstance(item, tuple) else self._fn(item)
        return self._fn(*item) if isinstance(item, tuple) else self._fn(item)


class SimpleDataset(Dataset):
    """A list (or anything indexable with a length) as a dataset."""

    def __init__(self, data):
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx):
        return self._data[idx]


class ArrayDataset(Dataset):
    """Several arrays of the same length; sample i is (a[i], b[i], ...)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset: needs at least one array")
        n = len(arrays[0])
        for k, a in enumerate(arrays):
            if len(a) != n:
                raise ValueError(f"ArrayDataset: array {k} has {len(a)} samples, array 0 has {n}")
        self._arrays = [a.asnumpy() if hasattr(a, "asnumpy") else a for a in arrays]

    def __len__(self) -> int:
        return len(self._arrays[0])

    def __getitem__(self, idx):
        if len(self._arrays) == 1:
            return self._arrays[0][idx]
        return tuple(a[idx] for a in self._arrays)
