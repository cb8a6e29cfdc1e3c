"""lm.nd: creating NDArrays, and every generated operator (lm.nd.relu, ...)."""
from __future__ import annotations

import numpy as np

from loom import _C, indexing, operators
from loom.context import Device, cpu

NDArray = _C.NDArray

# Array creation keeps NumPy's value semantics but defaults to float32, the
# dtype deep learning works in (as MXNet does).
_DEFAULT_FLOAT = np.float32
# NumPy dtypes an NDArray can hold today (float16/bfloat16 come with their kernels).
_SUPPORTED = {np.dtype(d) for d in ("float32", "float64", "int8", "uint8", "int32", "int64", "bool")}


def array(obj, dtype=None, ctx: Device | None = None) -> NDArray:
    """A new NDArray holding a copy of `obj` (a list, scalar, NumPy array or NDArray).

    Floating-point input becomes float32 unless `dtype` says otherwise;
    integer and bool input keep their NumPy dtype."""
    if isinstance(obj, NDArray):
        obj = obj.asnumpy()
    data = np.asarray(obj, dtype=dtype)
    if dtype is None and data.dtype == np.float64 and not (isinstance(obj, np.ndarray) and obj.dtype == np.float64):
        data = data.astype(_DEFAULT_FLOAT)
    if data.dtype.newbyteorder("=") not in _SUPPORTED:
        names = ", ".join(sorted(d.name for d in _SUPPORTED))
        raise TypeError(f"array: NumPy dtype {data.dtype} has no loom equivalent (supported: {names})")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return _C.from_numpy(np.require(data, requirements="C"), ctx if ctx is not None else cpu())


def zeros(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    return array(np.zeros(shape, dtype=dtype), ctx=ctx)


def ones(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    return array(np.ones(shape, dtype=dtype), ctx=ctx)


def _ndarray_repr(self: NDArray) -> str:
    values = np.array2string(self.asnumpy(), separator=", ", prefix="NDArray(")
    return f"NDArray({values}, dtype={self.dtype}, ctx={self.device!r})"


def _export_generated_ops() -> list[str]:
    names = [n for n in dir(_C.ops) if not n.startswith("_")]
    for name in names:
        globals()[name] = getattr(_C.ops, name)
    return names


NDArray.__repr__ = _ndarray_repr
operators.install()
indexing.install()
NDArray.__array__ = lambda self, dtype=None, copy=None: (
    self.asnumpy() if dtype is None else self.asnumpy().astype(dtype))
__all__ = ["NDArray", "array", "zeros", "ones"] + _export_generated_ops()
