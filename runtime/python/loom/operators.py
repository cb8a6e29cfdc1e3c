"""Python operators and methods on NDArray, built from the generated ops.

`a + b`, `2 * x`, `x < 0`, `-x`, `x.sum(dims=1)`, `x.exp()`: each maps to the
operator of the same meaning in lm.nd. A Python scalar operand is "weak", as
in PyTorch: it takes the array's dtype when it is of the same kind (an int
with an int array, a float with a float array) and otherwise the default of
its kind (float32 for a float with an integer array), so `int_array * 0.5`
is float32 and `float16_array + 1` stays float16."""
from __future__ import annotations

import numbers

import numpy as np

from loom import _C

NDArray = _C.NDArray
_FLOATING = {"float32", "float64", "float16", "bfloat16"}


def _scalar_dtype(value, like: NDArray) -> str:
    kind = like.dtype
    if isinstance(value, (bool, np.bool_)):
        return kind
    if isinstance(value, numbers.Integral):
        return "int64" if kind == "bool" else kind
    if isinstance(value, numbers.Real):
        return kind if kind in _FLOATING else "float32"
    raise TypeError(f"unsupported operand type {type(value).__name__} for an NDArray operation")


def _operand(value, like: NDArray) -> NDArray:
    if isinstance(value, NDArray):
        return value
    from loom import nd  # late: nd imports this module
    if isinstance(value, np.ndarray):
        return nd.array(value, ctx=like.device)
    return nd.array(np.asarray(value, dtype=_scalar_dtype(value, like)), ctx=like.device)


def _binary(op_name: str, reflected: bool = False, true_division: bool = False):
    def method(self, other):
        try:
            other = _operand(other, self)
        except TypeError:
            return NotImplemented
        x, y = (other, self) if reflected else (self, other)
        if true_division and x.dtype not in _FLOATING and y.dtype not in _FLOATING:
            # Integer / integer is true division (float32), as in PyTorch.
            x, y = x.astype("float32"), y.astype("float32")
        return getattr(_C.ops, op_name)(x, y)
    method.__name__ = op_name
    return method


def _logical(op_name: str):
    def method(self, other):
        other = _operand(other, self)
        if self.dtype != "bool" or other.dtype != "bool":
            raise TypeError(f"{op_name}: the & | ~ operators take bool arrays (bitwise operations on "
                            f"{self.dtype} and {other.dtype} are not available yet)")
        return getattr(_C.ops, op_name)(self, other)
    return method


def _invert(self):
    if self.dtype != "bool":
        raise TypeError(f"logical_not: ~ takes a bool array, not {self.dtype}")
    return _C.ops.logical_not(self)


def install() -> None:
    binary = {
        "add": ("__add__", "__radd__"), "sub": ("__sub__", "__rsub__"), "mul": ("__mul__", "__rmul__"),
        "pow": ("__pow__", "__rpow__"), "mod": ("__mod__", "__rmod__"),
    }
    for op_name, (forward, backward) in binary.items():
        setattr(NDArray, forward, _binary(op_name))
        setattr(NDArray, backward, _binary(op_name, reflected=True))
    NDArray.__truediv__ = _binary("div", true_division=True)
    NDArray.__rtruediv__ = _binary("div", reflected=True, true_division=True)
    for op_name, dunder in (("lt", "__lt__"), ("le", "__le__"), ("gt", "__gt__"), ("ge", "__ge__"),
                            ("eq", "__eq__"), ("ne", "__ne__")):
        setattr(NDArray, dunder, _binary(op_name))
    NDArray.__hash__ = object.__hash__  # == is elementwise; identity keeps arrays usable as keys
    NDArray.__and__ = _logical("logical_and")
    NDArray.__or__ = _logical("logical_or")
    NDArray.__invert__ = _invert
    NDArray.__neg__ = lambda self: _C.ops.neg(self)
    NDArray.__abs__ = lambda self: _C.ops.abs(self)
    NDArray.__pos__ = lambda self: self
    # Methods: every generated op whose first argument is its only Tensor
    # input and named x (x.exp(), x.sum(dims=1), x.clip(0, 1), ...).
    for name in _C.list_ops():
        info = _C.op_info(name)
        if info["args"][:1] == ["x"] and not hasattr(NDArray, name):
            setattr(NDArray, name, _method(getattr(_C.ops, name)))


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method
