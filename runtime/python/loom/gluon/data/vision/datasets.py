"""Image datasets read from local files: Fashion-MNIST (Debian's
dataset-fashion-mnist installs it), MNIST and CIFAR-10. Samples are
(image HxWxC uint8, label int32), as MXNet Gluon's."""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from loom.gluon.data.dataset import Dataset


def _missing(path: Path, how: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found: {how}")


class _ImageDataset(Dataset):
    """Images (N, H, W, C) uint8 and labels (N,) int32 in memory."""

    _data: np.ndarray
    _label: np.ndarray
    _transform = None

    def __len__(self) -> int:
        return len(self._label)

    def __getitem__(self, idx):
        if self._transform is not None:
            return self._transform(self._data[idx], self._label[idx])
        return self._data[idx], self._label[idx]


class _IdxDataset(_ImageDataset):
    _files = {True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
              False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    _how = ""

    def __init__(self, root, train: bool = True, transform=None):
        root = Path(os.path.expanduser(str(root)))
        images_file, labels_file = (root / f for f in self._files[train])
        for f in (images_file, labels_file):
            if not f.exists():
                raise _missing(f, self._how)
        with gzip.open(images_file) as f:
            raw = f.read()
        if int.from_bytes(raw[:4], "big") != 2051:
            raise ValueError(f"{images_file}: not an IDX image file")
        n, rows, cols = (int.from_bytes(raw[4 * k:4 * k + 4], "big") for k in (1, 2, 3))
        self._data = np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols, 1)
        with gzip.open(labels_file) as f:
            raw = f.read()
        if int.from_bytes(raw[:4], "big") != 2049:
            raise ValueError(f"{labels_file}: not an IDX label file")
        self._label = np.frombuffer(raw, np.uint8, offset=8).astype(np.int32)
        if len(self._label) != n:
            raise ValueError(f"{labels_file}: {len(self._label)} labels for {n} images")
        self._transform = transform


class FashionMNIST(_IdxDataset):
    """Zalando's 28x28 clothing images, 10 classes (60000 train, 10000 test)."""
    _how = "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass root="

    def __init__(self, root="/usr/share/datasets/fashion-mnist", train: bool = True, transform=None):
        super().__init__(root, train, transform)


class MNIST(_IdxDataset):
    """Handwritten digits, 28x28, in the IDX files from yann.lecun.com."""
    _how = "download the four MNIST .gz files there, or pass root="

    def __init__(self, root="~/.loom/datasets/mnist", train: bool = True, transform=None):
        super().__init__(root, train, transform)


class CIFAR10(_ImageDataset):
    """32x32 colour images, 10 classes, from the Python pickle batches (cifar-10-batches-py)."""

    def __init__(self, root="~/.loom/datasets/cifar10", train: bool = True, transform=None):
        root = Path(os.path.expanduser(str(root))) / "cifar-10-batches-py"
        names = [f"data_batch_{k}" for k in range(1, 6)] if train else ["test_batch"]
        data, labels = [], []
        for name in names:
            f = root / name
            if not f.exists():
                raise _missing(f, "extract cifar-10-python.tar.gz there, or pass root=")
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            data.append(d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(d[b"labels"], np.int32))
        self._data, self._label = np.concatenate(data), np.concatenate(labels)
        self._transform = transform
