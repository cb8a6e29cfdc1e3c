"""lm.nd: creating NDArrays, and every generated operator (lm.nd.relu, ...)."""
from __future__ import annotations

import numpy as np

from loom import _C, indexing, operators
from loom.serialization import load, save
from loom.context import Device, cpu, gpu

NDArray = _C.NDArray

# Array creation keeps NumPy's value semantics but defaults to float32, the
# dtype deep learning works in (as MXNet does).
_DEFAULT_FLOAT = np.float32
# NumPy dtypes an NDArray can be made from (bfloat16 has no NumPy dtype:
# make it with astype("bfloat16")).
_SUPPORTED = {np.dtype(d) for d in ("float32", "float64", "float16", "int8", "uint8", "int32", "int64", "bool")}


def array(obj, dtype=None, ctx: Device | None = None) -> NDArray:
    """A new NDArray holding a copy of `obj` (a list, scalar, NumPy array or NDArray).

    Without `dtype`, as in MXNet: Python numbers and lists of them become
    float32 (`lm.nd.array([[1, 2], [3, 4]])` is a float32 array that can take
    a gradient), lists of bools stay bool; NumPy arrays and NDArrays keep
    their dtype (an int64 NumPy array stays int64)."""
    if isinstance(obj, NDArray):
        obj = obj.asnumpy()
    data = np.asarray(obj, dtype=dtype)
    from_python = not isinstance(obj, (np.ndarray, np.generic))
    if dtype is None and data.dtype.kind in "iuf" and (from_python or data.dtype == np.float64) \
            and not (isinstance(obj, np.ndarray) and obj.dtype == np.float64):
        data = data.astype(_DEFAULT_FLOAT)
    if data.dtype.newbyteorder("=") not in _SUPPORTED:
        names = ", ".join(sorted(d.name for d in _SUPPORTED))
        raise TypeError(f"array: NumPy dtype {data.dtype} has no loom equivalent (supported: {names})")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return _C.from_numpy(np.require(data, requirements="C"), ctx if ctx is not None else cpu())


def _shape_arg(shape) -> list[int]:
    return [int(shape)] if isinstance(shape, (int, np.integer)) else [int(s) for s in shape]


# full, arange, linspace and eye are generated ops (opdefs/creation/), computed
# on their device; the functions below add NumPy's conveniences around them.
def zeros(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    return _C.ops.full(_shape_arg(shape), 0.0, dtype, ctx)


def ones(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    return _C.ops.full(_shape_arg(shape), 1.0, dtype, ctx)


def empty(shape, dtype="float32", ctx: Device | None = None) -> NDArray:
    """An array whose contents are unspecified (zeros today)."""
    return zeros(shape, dtype=dtype, ctx=ctx)


def zeros_like(a: NDArray) -> NDArray:
    return zeros(a.shape, dtype=a.dtype, ctx=a.device)


def ones_like(a: NDArray) -> NDArray:
    return ones(a.shape, dtype=a.dtype, ctx=a.device)


def arange(start, stop=None, step=1, dtype=None, ctx: Device | None = None, out: NDArray | None = None) -> NDArray:
    """NumPy's arange: arange(stop) counts from 0; without dtype, int64 for
    integer arguments and float32 otherwise."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, stop, step))
        dtype = "int64" if ints else "float32"
    return _C.ops.arange(float(start), float(stop), float(step), dtype, ctx, out=out)


def eye(n, m=None, k=0, dtype="float32", ctx: Device | None = None, out: NDArray | None = None) -> NDArray:
    """NumPy's eye: an n x m matrix (m None: n) with ones on diagonal k."""
    if m is not None and int(m) == 0:
        return _C.ops.full([int(n), 0], 0.0, dtype, ctx, out=out)
    return _C.ops.eye(int(n), 0 if m is None else int(m), int(k), dtype, ctx, out=out)


from_dlpack = _C.from_dlpack


def stop_gradient(a: NDArray) -> NDArray:
    """The same data, cut from the graph (MXNet's name for detach)."""
    return a.detach()


# Waits for every op the engine holds, then each GPU's queued kernels; raises
# the first asynchronous failure no wait has reported (C++: one call, cheap
# when nothing is pending, as timed loops call it every step).
waitall = _C.wait_all


def dropout_mask(shape, p: float, dtype: str = "float32", ctx: Device | None = None) -> NDArray:
    """The scaled mask lm.nd.dropout multiplies by: 1 / (1 - p) where kept, 0
    where dropped, drawn from lm.random's stream (advancing it as dropout does)."""
    from loom import autograd, random as _random
    ones = full(shape, 1.0, dtype=dtype, ctx=ctx)
    seed, offset = _random._reserve_for_op(ones.size)
    with autograd.pause():
        return _C.ops.dropout_seeded(ones, p, seed, offset)


def dropout(x: NDArray, p: float = 0.5, training: bool | None = None) -> NDArray:
    """Inverted dropout: each element zeroed with probability p, the rest
    scaled by 1/(1-p), the mask drawn from lm.random's stream (lm.random.seed
    replays it). The identity outside training: training=None follows
    lm.autograd.is_training() (MXNet's Dropout), True/False force it."""
    from loom import autograd, random as _random
    if training is None:
        training = autograd.is_training()
    if not training or p == 0.0:
        return x
    from loom import cached_op
    if cached_op.is_tracing():
        # In a graph the mask is an input the cached op draws afresh on every
        # run (from the same stream, in the same order), never a frozen seed.
        return x * cached_op.random_mask(x, p)
    return _C.ops.dropout_seeded(x, p, *_random._reserve_for_op(x.size))


def _state_entry(states: NDArray, k: int) -> NDArray:
    """states[k] through operators (squeeze / take), which a hybridized
    block's trace records; an index would be a view the graph cannot hold."""
    if states.shape[0] == 1:
        return _C.ops.squeeze(states, 0)
    return _C.ops.squeeze(_C.ops.take(states, array([k], dtype="int64", ctx=states.device), 0), 0)


def _stacked(op, name: str, x, weights, states, num_layers: int, bidirectional: bool, drop: float = 0.0,
             **attrs):
    """Layers x directions of a recurrent op, as PyTorch's nn.LSTM/nn.GRU
    stack them; `states` maps each initial state's name to its array (or
    None) with (num_layers * directions) leading entries."""
    directions = 2 if bidirectional else 1
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {drop!r}")
    for state_name, s in states.items():
        # One (1, N, H) state must not stand in for every layer and direction.
        if s is not None and (s.ndim != 3 or s.shape[0] != num_layers * directions):
            raise ValueError(f"{name}: {state_name} must be (num_layers * directions, batch, hidden) with "
                             f"{num_layers} x {directions} = {num_layers * directions} leading entries, got "
                             f"shape {tuple(s.shape)}")
    states = list(states.values())
    weights = list(weights)
    if len(weights) != num_layers * directions:
        raise ValueError(f"{name}: expected {num_layers * directions} (w_ih, w_hh, b_ih, b_hh) tuples for "
                         f"{num_layers} layer(s) x {directions} direction(s), got {len(weights)}")
    finals, layer_in = [[] for _ in states], x
    for layer in range(num_layers):
        if layer > 0 and drop > 0.0:
            layer_in = dropout(layer_in, drop)  # between layers, in training only (nn.LSTM's dropout)
        outs = []
        for d in range(directions):
            k = layer * directions + d
            w_ih, w_hh, b_ih, b_hh = weights[k]
            y, *last = op(layer_in, w_ih, w_hh, b_ih, b_hh,
                          *[None if s is None else _state_entry(s, k) for s in states], reverse=d == 1, **attrs)
            outs.append(y)
            for acc, value in zip(finals, last):
                acc.append(value)
        layer_in = outs[0] if directions == 1 else _C.ops.concat(outs, dim=2)
    return layer_in, [_C.ops.stack(f, dim=0) for f in finals]


def lstm(x: NDArray, weights, h0: NDArray | None = None, c0: NDArray | None = None, num_layers: int = 1,
         bidirectional: bool = False, dropout: float = 0.0):
    """A multi-layer (optionally bidirectional) LSTM over x (T, N, I), as
    PyTorch's nn.LSTM computes it: `weights` lists (w_ih, w_hh, b_ih, b_hh)
    per layer and direction (layer-major, forward direction first; biases
    may be None); h0, c0 are (num_layers * directions, N, H) or None.
    Returns (y, (h_n, c_n)), y (T, N, directions * H). Each layer and
    direction is one fused lstm_layer op. dropout: the probability of
    zeroing each input of layers after the first, while training."""
    y, (h_n, c_n) = _stacked(_C.ops.lstm_layer, "lstm", x, weights, {"h0": h0, "c0": c0}, num_layers,
                             bidirectional, dropout)
    return y, (h_n, c_n)


def gru(x: NDArray, weights, h0: NDArray | None = None, num_layers: int = 1, bidirectional: bool = False,
        dropout: float = 0.0):
    """A multi-layer (optionally bidirectional) GRU over x (T, N, I), as
    PyTorch's nn.GRU: weights as lstm's, h0 (num_layers * directions, N, H)
    or None. Returns (y, h_n). Each layer and direction is one gru_layer op."""
    y, (h_n,) = _stacked(_C.ops.gru_layer, "gru", x, weights, {"h0": h0}, num_layers, bidirectional, dropout)
    return y, h_n


def rnn(x: NDArray, weights, h0: NDArray | None = None, num_layers: int = 1, bidirectional: bool = False,
        nonlinearity: str = "tanh", dropout: float = 0.0):
    """A multi-layer (optionally bidirectional) Elman RNN over x (T, N, I), as
    PyTorch's nn.RNN (nonlinearity 'tanh' or 'relu'): weights as lstm's, h0
    (num_layers * directions, N, H) or None. Returns (y, h_n)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    y, (h_n,) = _stacked(_C.ops.rnn_layer, "rnn", x, weights, {"h0": h0}, num_layers, bidirectional, dropout,
                         relu=nonlinearity == "relu")
    return y, h_n


def _item(self: NDArray):
    """The value of a one-element array as a Python number."""
    if self.size != 1:
        raise ValueError(f"item: only one-element arrays convert to a Python scalar, got shape {self.shape}")
    return self.asnumpy().reshape(()).item()


def _copyto(self: NDArray, other):
    """MXNet's copyto: into an existing array (same shape) or onto a context."""
    if isinstance(other, NDArray):
        copy(self.astype(other.dtype) if self.dtype != other.dtype else self, out=other)
        return other
    return self.to(other)


def _len(self: NDArray) -> int:
    if self.ndim == 0:
        raise TypeError("len() of a 0-d array")
    return self.shape[0]


def _as_in_context(self: NDArray, ctx: Device) -> NDArray:
    """This array on `ctx`: itself when already there, else a copy."""
    return self if self.device == ctx else self.to(ctx)


def _ndarray_repr(self: NDArray) -> str:
    from loom import cached_op
    if cached_op.is_tracing():  # values do not exist yet (abstract evaluation)
        return f"NDArray(<traced>, shape={tuple(self.shape)}, dtype={self.dtype}, ctx={self.device!r})"
    values = np.array2string(self.asnumpy(), separator=", ", prefix="NDArray(")
    return f"NDArray({values}, dtype={self.dtype}, ctx={self.device!r})"


# Python wrappers this module defines over a generated op of the same name
# (NumPy-style optional arguments); the generated op stays in _C.ops.
_WRAPPED = {"arange", "eye"}


def _export_generated_ops() -> list[str]:
    names = [n for n in dir(_C.ops) if not n.startswith("_") and n not in _WRAPPED]
    for name in names:
        globals()[name] = getattr(_C.ops, name)
    return names


NDArray.__repr__ = _ndarray_repr
NDArray.item = _item
NDArray.copyto = _copyto
NDArray.as_in_context = _as_in_context
NDArray.context = property(lambda self: self.device)   # MXNet's name
NDArray.__len__ = _len
operators.install()
indexing.install()
NDArray.__array__ = lambda self, dtype=None, copy=None: (
    self.asnumpy() if dtype is None else self.asnumpy().astype(dtype))
from loom import random  # noqa: E402  (lm.nd.random, as in MXNet)

__all__ = ["NDArray", "array", "zeros", "ones", "empty", "zeros_like", "ones_like", "arange",
           "eye", "from_dlpack", "stop_gradient", "dropout", "dropout_mask", "lstm", "gru", "rnn", "waitall", "save", "load", "random"] + _export_generated_ops()

# NumPy's names where they differ from loom's (MXNet's are loom's own).
_NUMPY_ALIASES = {"negative": "neg", "multiply": "mul", "subtract": "sub", "divide": "div", "true_divide": "div",
                  "power": "pow", "absolute": "abs", "equal": "eq", "not_equal": "ne", "less": "lt",
                  "less_equal": "le", "greater": "gt", "greater_equal": "ge", "amax": "max", "amin": "min",
                  "dot": "matmul", "concatenate": "concat"}
# PyTorch's names for the view operators, as functions and as methods.
_TORCH_ALIASES = {"permute": "transpose", "unsqueeze": "expand_dims"}
for _alias, _name in {**_NUMPY_ALIASES, **_TORCH_ALIASES}.items():
    globals()[_alias] = globals()[_name]
for _alias, _name in _TORCH_ALIASES.items():
    setattr(NDArray, _alias, getattr(NDArray, _name))
__all__ += list(_NUMPY_ALIASES) + list(_TORCH_ALIASES)
