"""Random arrays (lm.random / lm.nd.random, MXNet's names), reproducible with
lm.random.seed(n).

Values come from a counter-based generator, Philox4x32-10, computed on the
array's own device (runtime/random/): element i of a call is a function of
the seed and of its position offset + i in the stream, so the same seed
gives the same values on the CPU and on a GPU, however many threads draw
them. Each call advances the offset by the number of elements it drew."""
from __future__ import annotations

import os

import numpy as np

from loom import _C

_state = {"seed": int.from_bytes(os.urandom(8), "little"), "offset": 0}


def seed(n: int) -> None:
    """Restarts the stream: the arrays drawn afterwards repeat."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"random.seed: expected an integer seed, got {type(n).__name__}")
    _state["seed"], _state["offset"] = int(n) % 2**64, 0


def get_state() -> tuple[int, int]:
    """(seed, offset): pass to set_state to replay what follows."""
    return _state["seed"], _state["offset"]


def set_state(state: tuple[int, int]) -> None:
    _state["seed"], _state["offset"] = int(state[0]) % 2**64, int(state[1])


def _reserve(count: int) -> tuple[int, int]:
    """(seed, offset) for `count` draws, the stream advanced past them: for
    ops that draw inside their kernel (lm.nd.dropout)."""
    at = (_state["seed"], _state["offset"])
    _state["offset"] += int(count)
    return at


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _draw(dist: str, a: float, b: float, shape, dtype: str, ctx):
    from loom import nd
    out = nd.empty(_shape(shape), dtype=dtype, ctx=ctx)
    _C.random_fill(out, dist, float(a), float(b), _state["seed"], _state["offset"])
    _state["offset"] += out.size
    return out


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", ctx=None):
    """Values in [low, high)."""
    return _draw("uniform", low, high, shape, dtype, ctx)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", ctx=None):
    """Gaussian values with mean loc and standard deviation scale."""
    return _draw("normal", loc, scale, shape, dtype, ctx)


def randn(*shape, dtype="float32", ctx=None):
    return normal(0.0, 1.0, shape, dtype, ctx)


def randint(low, high, shape=(1,), dtype="int32", ctx=None):
    """Integers in [low, high)."""
    return _draw("randint", low, high, shape, dtype, ctx)


def bernoulli(p=0.5, shape=(1,), dtype="float32", ctx=None):
    """1 with probability p, else 0 (dropout masks)."""
    return _draw("bernoulli", p, 0.0, shape, dtype, ctx)


def shuffle(a):
    """A copy of `a` with its first axis permuted (the permutation drawn from
    the same stream, so it repeats with the seed)."""
    from loom import nd
    if a.ndim == 0:
        raise ValueError("random.shuffle: a 0-d array has no axis to shuffle")
    keys = uniform(0.0, 1.0, (a.shape[0],), dtype="float64").asnumpy()
    return nd.take(a, nd.array(np.argsort(keys, kind="stable"), ctx=a.device), dim=0)
