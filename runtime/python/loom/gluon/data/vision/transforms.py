"""Image transforms on NumPy arrays (so they run in DataLoader workers):
HWC uint8 in, CHW float32 out of ToTensor, as MXNet Gluon's."""
from __future__ import annotations

import numpy as np


class Compose:
    def __init__(self, transforms):
        self._transforms = list(transforms)

    def __call__(self, x):
        for t in self._transforms:
            x = t(x)
        return x


class ToTensor:
    """HWC uint8 in [0, 255] -> CHW float32 in [0, 1]."""

    def __call__(self, x):
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[:, :, None]
        return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32) / 255.0


class Normalize:
    """(x - mean) / std per channel of a CHW image."""

    def __init__(self, mean=0.0, std=1.0):
        self._mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(std, np.float32).reshape(-1, 1, 1)

    def __call__(self, x):
        return ((np.asarray(x, np.float32) - self._mean) / self._std).astype(np.float32)


class RandomFlipLeftRight:
    def __init__(self, p: float = 0.5):
        self._p = p
        self._rng = np.random.default_rng()

    def __call__(self, x):
        x = np.asarray(x)
        return np.ascontiguousarray(x[:, ::-1]) if self._rng.random() < self._p else x


class RandomCrop:
    """A random size x size crop of an HWC image, after zero padding by `pad`."""

    def __init__(self, size, pad: int = 0):
        self._size = (size, size) if isinstance(size, int) else tuple(size)
        self._pad = pad
        self._rng = np.random.default_rng()

    def __call__(self, x):
        x = np.asarray(x)
        if self._pad:
            x = np.pad(x, ((self._pad, self._pad), (self._pad, self._pad)) + ((0, 0),) * (x.ndim - 2))
        h, w = self._size
        top = self._rng.integers(0, x.shape[0] - h + 1)
        left = self._rng.integers(0, x.shape[1] - w + 1)
        return x[top:top + h, left:left + w]


class Resize:
    """Nearest-neighbour resize of an HWC image to (width, height)."""

    def __init__(self, size):
        self._w, self._h = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x):
        x = np.asarray(x)
        rows = (np.arange(self._h) * x.shape[0] / self._h).astype(int)
        cols = (np.arange(self._w) * x.shape[1] / self._w).astype(int)
        return x[rows][:, cols]
