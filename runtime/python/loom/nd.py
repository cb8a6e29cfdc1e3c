"""lm.nd: creating NDArrays, and every generated operator (lm.nd.relu, ...)."""
from __future__ import annotations

import numpy as np

from loom import _C, indexing, operators
from loom.serialization import load, save
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


def full(shape, value, dtype="float32", ctx: Device | None = None) -> NDArray:
    return array(np.full(shape, value, dtype=dtype), ctx=ctx)


def empty(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    """An array whose contents are unspecified (zeros today)."""
    return zeros(shape, dtype=dtype, ctx=ctx)


def zeros_like(a: NDArray) -> NDArray:
    return zeros(a.shape, dtype=a.dtype, ctx=a.device)


def ones_like(a: NDArray) -> NDArray:
    return ones(a.shape, dtype=a.dtype, ctx=a.device)


def arange(start, stop=None, step=1, dtype=None, ctx: Device | None = None) -> NDArray:
    """NumPy's arange; float32 for float arguments unless dtype says otherwise."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and values.dtype == np.float64:
        dtype = "float32"
    return array(values, dtype=dtype, ctx=ctx)


def linspace(start, stop, num=50, endpoint=True, dtype="float32", ctx: Device | None = None) -> NDArray:
    return array(np.linspace(start, stop, num, endpoint=endpoint), dtype=dtype, ctx=ctx)


def eye(n, m=None, k=0, dtype="float32", ctx: Device | None = None) -> NDArray:
    return array(np.eye(n, m, k), dtype=dtype, ctx=ctx)


from_dlpack = _C.from_dlpack


def stop_gradient(a: NDArray) -> NDArray:
    """The same data, cut from the graph (MXNet's name for detach)."""
    return a.detach()


def waitall() -> None:
    """Waits for all pending work (every call is synchronous today)."""


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
from loom import random  # noqa: E402  (lm.nd.random, as in MXNet)

__all__ = ["NDArray", "array", "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "arange",
           "linspace", "eye", "from_dlpack", "stop_gradient", "waitall", "save", "load", "random"] + _export_generated_ops()
