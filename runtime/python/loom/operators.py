"""Python operators and methods on NDArray, installed from the generated ops.

Which op implements which operator is declared in its YAML
(`python: {operators: [__add__, __radd__]}`) and read here from the
registry (`_C.op_info`); this module knows only Python's own rules:

* a reflected operator (`__radd__`) calls the op with the operands swapped;
* a Python scalar operand is "weak", as in PyTorch: it takes the array's
  dtype when of the same kind (an int with an int array, a float with a
  float array) and otherwise the default of its kind (float32 for a float
  with an integer array), so `int_array * 0.5` is float32;
* `/` is true division: integer operands are divided in float32;
* `&`, `|` and `~` are logical and take bool arrays (bitwise integer
  operations are not available yet).

Every op whose first argument is its only Tensor input, named x, also
becomes a method: `x.exp()`, `x.sum(dims=1)`, `x.clip(0, 1)`."""
from __future__ import annotations

import numbers

import numpy as np

from loom import _C

NDArray = _C.NDArray
_FLOATING = {"float32", "float64", "float16", "bfloat16"}
_LOGICAL = {"__and__", "__or__", "__invert__"}
_TRUE_DIVISION = {"__truediv__", "__rtruediv__"}


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
    dtype = _scalar_dtype(value, like)
    if dtype == "bfloat16":  # no NumPy dtype: rounded from float32
        return nd.array(np.asarray(value, dtype=np.float32), ctx=like.device).astype(dtype)
    return nd.array(np.asarray(value, dtype=dtype), ctx=like.device)


def _check_logical(dunder: str, op_name: str, *arrays: NDArray) -> None:
    if dunder in _LOGICAL and any(a.dtype != "bool" for a in arrays):
        kinds = " and ".join(a.dtype for a in arrays)
        raise TypeError(f"{op_name}: the & | ~ operators take bool arrays (bitwise operations on {kinds} "
                        "are not available yet)")


def _binary_operator(dunder: str, op):
    reflected = dunder.startswith("__r")  # __radd__, __rsub__, ... (no __rshift__ is declared)

    def general(self, other):
        try:
            other = _operand(other, self)
        except TypeError:
            return NotImplemented
        x, y = (other, self) if reflected else (self, other)
        _check_logical(dunder, op.__name__, x, y)
        if dunder in _TRUE_DIVISION and x.dtype not in _FLOATING and y.dtype not in _FLOATING:
            x, y = x.astype("float32"), y.astype("float32")
        return op(x, y)

    if reflected or dunder in _LOGICAL or dunder in _TRUE_DIVISION:
        method = general
    else:
        def method(self, other):
            # `a < b` of two arrays: one type test and the op, no conversion
            # calls. (+ - * @ are C++ methods: runtime/python/bind_operators.cc.)
            if type(other) is NDArray:
                return op(self, other)
            return general(self, other)
    method.__name__ = dunder
    _GENERAL[dunder] = general
    return method


# What the C++ fast operators fall back to for a non-array operand.
_GENERAL: dict = {}
_FAST_IN_CPP = {"__add__", "__sub__", "__mul__", "__matmul__"}


def general_binary(dunder: str):
    return _GENERAL[dunder]


def _unary_operator(dunder: str, op):
    def method(self):
        _check_logical(dunder, op.__name__, self)
        return op(self)
    method.__name__ = dunder
    return method


def _inplace_operator(dunder: str, op_inplace):
    """x += y: the op's in-place variant overwrites x (the engine orders it
    after x's pending readers); x keeps its identity, dtype and shape."""
    def method(self, other):
        try:
            other = _operand(other, self)
        except TypeError:
            return NotImplemented
        op_inplace(self, other)
        return self
    method.__name__ = dunder
    return method


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def install() -> None:
    for name in _C.list_ops():
        info = _C.op_info(name)
        op = getattr(_C.ops, name)
        for dunder in info["python_operators"]:
            unary = dunder in ("__neg__", "__abs__", "__invert__")
            if dunder.startswith("__i") and not unary:
                setattr(NDArray, dunder, _inplace_operator(dunder, getattr(_C.ops, name + "_")))
            elif unary:
                setattr(NDArray, dunder, _unary_operator(dunder, op))
            else:
                method = _binary_operator(dunder, op)
                if dunder not in _FAST_IN_CPP:
                    setattr(NDArray, dunder, method)
        # The method variant (YAML `variants: [..., method]`): x.exp(), and x.relu_() for in-place ones.
        if "method" in info["variants"]:
            if hasattr(_C.ops, name + "_") and not hasattr(NDArray, name + "_"):
                setattr(NDArray, name + "_", _method(getattr(_C.ops, name + "_")))
            if not hasattr(NDArray, name):
                setattr(NDArray, name, _method(op))
    if "__eq__" in NDArray.__dict__:
        NDArray.__hash__ = object.__hash__  # == is elementwise; identity keeps arrays usable as keys
    NDArray.__pos__ = lambda self: self
