"""References NumPy lacks, for the `tests.ref` expressions in opdefs/ (as
`refs.<name>`). Computed in float64 with the standard library, so they are
independent of loom's kernels."""
import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    return _erf(np.asarray(x, dtype=np.float64))


def axis(dims):
    """A reduction's `dims` (None, an int or a list) as NumPy's `axis`."""
    if dims is None or isinstance(dims, int):
        return dims
    return tuple(dims)


def log_softmax(x, dim):
    """log(softmax(x)) along dim, in float64 with the max subtracted first."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def index_add(x, indices, src, dim):
    """PyTorch's index_add with NumPy: np.add.at accumulates repeated indices."""
    out = np.array(x, copy=True)
    src = np.asarray(src)
    if np.ndim(indices) == 0:  # one slice, given without the dim
        src = np.expand_dims(src, dim)
    idx = np.asarray(indices).reshape(-1)
    moved = np.moveaxis(out, dim, 0)
    np.add.at(moved, idx, np.moveaxis(src, dim, 0))
    return out


def one_hot(indices, depth, on_value, off_value):
    idx = np.asarray(indices)
    out = np.full(idx.shape + (depth,), off_value, dtype=np.float32)
    np.put_along_axis(out, idx[..., None], np.float32(on_value), axis=-1)
    return out


def pad(x, pad_width, value):
    """MXNet's flat (before, after) list as NumPy's pairs."""
    pairs = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(np.ndim(x))]
    return np.pad(np.asarray(x), pairs, mode="constant", constant_values=value)


def scatter_add(x, index, src, dim):
    """PyTorch's scatter_add with NumPy (np.add.at on the full index tuple)."""
    out = np.array(x, copy=True)
    index = np.asarray(index)
    grids = list(np.indices(index.shape, sparse=False))
    grids[dim] = index
    np.add.at(out, tuple(grids), np.asarray(src)[tuple(np.indices(index.shape))])
    return out


def gather(x, index, dim):
    """PyTorch's gather with NumPy: index may be smaller than x in the other dims."""
    index = np.asarray(index)
    grids = list(np.indices(index.shape, sparse=False))
    grids[dim] = index
    return np.asarray(x)[tuple(grids)]


def topk(x, k, dim, largest):
    """(values, indices) of the k largest (smallest) along dim, ties to the
    lower index: a stable sort of float64 keys (negated for largest)."""
    x = np.asarray(x)
    keys = x.astype(np.float64)
    order = np.argsort(-keys if largest else keys, axis=dim, kind="stable")
    idx = np.take(order, np.arange(k), axis=dim)
    return np.take_along_axis(x, idx, axis=dim), idx.astype(np.int64)


def softmax_cross_entropy(logits, label, dim):
    """-log_softmax(logits)[label] along dim, in float64."""
    lsm = log_softmax(logits, dim)
    idx = np.expand_dims(np.asarray(label, dtype=np.int64), dim)
    return -np.squeeze(np.take_along_axis(lsm, idx, axis=dim), axis=dim)
