"""NDArray indexing: x[...] and x[...] = value, with NumPy's rules.

Basic indices — integers, slices (any step, negative included), None,
Ellipsis — give views (no copy) that autograd differentiates through (the
gradient is scattered back into zeros of the source shape). One
integer-array or boolean-mask ("advanced") index among basic ones copies
through take(), so it is differentiable too (x[idx], x[:, idx], x[mask],
x[mask, 1:]). Several advanced indices at once go through NumPy on the host;
those are not differentiable yet, and using them on an array that requires
grad while recording raises instead of silently dropping the gradient.

Assignment writes through the view: the value (an NDArray, NumPy array or
Python number) broadcasts to the selected shape and converts to the array's
dtype. With basic indices it is recorded by autograd (x's history is rebased
onto the assignment: x[1:3] = y inside record() differentiates into x's old
value and y); a leaf that requires grad, a recorded view, and an array that
shares memory while outside autograd are refused with the reason. Assigning
with integer arrays or masks is not recorded yet."""
from __future__ import annotations

import numbers

import numpy as np

from loom import _C

NDArray = _C.NDArray


def _is_advanced(item) -> bool:
    return isinstance(item, (list, np.ndarray, NDArray)) or isinstance(item, (bool, np.bool_))


def _basic_index(shape: tuple, key: tuple):
    """-> (starts, steps, sizes, keeps, new_axes) for a key of ints, slices,
    None and at most one Ellipsis; IndexError like NumPy's otherwise."""
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices for an array of shape {tuple(shape)}: {used} were given")
    if Ellipsis not in key:
        key = key + (Ellipsis,)
    pos = key.index(Ellipsis)
    key = key[:pos] + (slice(None),) * (len(shape) - used) + key[pos + 1:]
    starts, steps, sizes, keeps, new_axes = [], [], [], [], []
    dim, out_pos = 0, 0
    for k in key:
        if k is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        n = shape[dim]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            size = len(range(start, stop, step))
            starts.append(start if size else 0)
            steps.append(step)
            sizes.append(size)
            keeps.append(True)
            out_pos += 1
        elif isinstance(k, numbers.Integral):
            i = int(k)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            starts.append(i + n if i < 0 else i)
            steps.append(1)
            sizes.append(1)
            keeps.append(False)
        else:
            raise IndexError(f"only integers, slices (:), ellipsis (...), None and integer or boolean "
                             f"arrays are valid indices, got {type(k).__name__}")
        dim += 1
    return starts, steps, sizes, keeps, new_axes


def _key(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _numpy_key(key: tuple) -> tuple:
    return tuple(k.asnumpy() if isinstance(k, NDArray) else k for k in key)


def _one_advanced(self: NDArray, key: tuple, at: int):
    """x[key] with one integer-array or boolean-mask index (at position `at`)
    among basic ones, as NumPy: the basic part is a view, then the advanced
    index is a take() along the dim it stands for (a mask's nonzero
    positions over the dims it covers, flattened), so the result is
    differentiable like any op. None when NumPy's rules need the host path
    (a 0-d boolean)."""
    from loom import nd
    index = key[at]
    host = index.asnumpy() if isinstance(index, NDArray) else np.asarray(index)
    if host.dtype == np.bool_ and host.ndim == 0:
        return None
    if host.dtype != np.bool_ and host.dtype.kind not in "iu":
        # A float NDArray of whole numbers (lm.nd.array([0, 2]) is float32, as
        # in MXNet) indexes like its integers; other floats are NumPy's error.
        if isinstance(index, NDArray) and np.all(np.mod(host, 1) == 0):
            host = host.astype(np.int64)
        elif host.size:  # an empty list is an empty integer index
            raise IndexError(f"arrays used as indices must be of integer or boolean type, got {host.dtype}")
        else:
            host = host.astype(np.int64)
    covered = host.ndim if host.dtype == np.bool_ else 1
    basic = key[:at] + (slice(None),) * covered + key[at + 1:]
    view = _C._index_view(self, *_basic_index(self.shape, basic))
    # The view dim the advanced index stands for: one per slice or None
    # before it, an Ellipsis's share of the dims, none for an integer.
    used = sum(1 for k in basic if k is not None and k is not Ellipsis)
    dim = 0
    for k in key[:at]:
        if k is Ellipsis:
            dim += self.ndim - used
        elif k is None or isinstance(k, slice):
            dim += 1
    if host.dtype != np.bool_ and host.size:
        # Checked here, at the call, as NumPy does (take() reports a bad index
        # when its kernel runs, which may be later).
        n = view.shape[dim]
        bad = host[(host < -n) | (host >= n)]
        if bad.size:
            raise IndexError(f"index {int(bad.flat[0])} is out of bounds for axis {dim} with size {n}")
    if host.dtype == np.bool_:
        region = view.shape[dim:dim + covered]
        if tuple(host.shape) != tuple(region):
            raise IndexError(f"boolean index of shape {host.shape} does not match the indexed dims {tuple(region)} "
                             f"of an array of shape {self.shape}")
        flat_shape = list(view.shape[:dim]) + [int(np.prod(region, dtype=np.int64))] + list(view.shape[dim + covered:])
        view = view.reshape(flat_shape)
        host = np.flatnonzero(host)
    return nd.take(view, nd.array(host.astype(np.int64), dtype="int64", ctx=self.device), dim=dim)


def getitem(self: NDArray, key):
    key = _key(key)
    advanced = [i for i, k in enumerate(key) if _is_advanced(k)]
    if len(advanced) == 1:
        result = _one_advanced(self, key, advanced[0])
        if result is not None:
            return result
    if advanced:
        from loom import autograd, nd
        if autograd.is_recording() and self.requires_grad:
            raise NotImplementedError("indexing with several integer arrays or boolean masks at once is not "
                                      "differentiable yet: index with one at a time, or under autograd.pause()")
        return nd.array(self.asnumpy()[_numpy_key(key)], dtype=self.dtype, ctx=self.device)
    return _C._index_view(self, *_basic_index(self.shape, key))


def setitem(self: NDArray, key, value) -> None:
    from loom import autograd, nd, operators
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    value = operators._operand(value, self)
    key = _key(key)
    if any(_is_advanced(k) for k in key):
        if autograd.is_recording() and (self.requires_grad or value.requires_grad):
            raise NotImplementedError("__setitem__ with integer arrays or boolean masks is not recorded by "
                                      "autograd yet: use basic indices (ints, slices, None, ...), or assign "
                                      "under autograd.pause()")
        host = self.asnumpy()
        host[_numpy_key(key)] = value.asnumpy()
        nd.copy(nd.array(host, dtype=self.dtype, ctx=self.device), out=self)
        return
    # The write, and while recording x's rebased history (runtime/autograd/assign.h).
    _C._assign(self, *_basic_index(self.shape, key), value)


def install() -> None:
    NDArray.__getitem__ = getitem
    NDArray.__setitem__ = setitem
